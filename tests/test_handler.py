"""The content handler (`SetHandler wasm-handler`) against a real apache2."""

import hashlib
import http.client
import os
import time

import pytest

from harness import Apache, guest, location, vm_kib

P1, P2 = "wasm32-wasip1", "wasm32-wasip2"


CONFIG = "\n".join([
    location("/hello", "hello"),
    location("/hello-p2", "hello", target=P2),
    location("/typed", "hello", "ForceType text/html"),
    location("/args-a", "probe", "WasmArg args", "WasmArg alpha"),
    location("/args-b", "probe", "WasmArg args", "WasmArg beta", "WasmArg gamma"),
    location("/env", "probe", "WasmArg args", "WasmEnv APP_MODE production", "WasmEnv GREETING 'hello world'"),
    location("/cgi", "probe", "WasmEnableCGI On", "WasmEnv APP_MODE production", "WasmEnv SERVER_NAME overridden"),
    location("/cgi-p2", "probe", "WasmEnableCGI On", target=P2),
    location("/app", "request-viewer", "WasmEnableCGI On", "WasmMapDir /app {root}/app", "WasmArg /app/main.py",
             "WasmEnv APP_MODE production", "WasmMapCGIFileNames On"),
    location("/php", "probe", "WasmEnableCGI On", "WasmMapDir /app {root}/htdocs/php", "WasmMapCGIFileNames On"),
    location("/php-unmapped", "probe", "WasmEnableCGI On", "WasmMapDir /app {root}/htdocs/php-unmapped"),
    location("/echo", "echo", "WasmEnableCGI On"),
    location("/echo-p2", "echo", "WasmEnableCGI On", target=P2),
    location("/limited", "probe", "WasmEnableCGI On", "LimitRequestBody 1000"),
    location("/files", "file-lister", "WasmEnableCGI On", "WasmMapDir /data {root}/data", "WasmArg /data"),
    location("/samepath", "file-lister", "WasmEnableCGI On", "WasmDir {root}/data", "WasmArg {root}/data"),
    # The same guest and mapping as /files, but its root argument is the mapped directory's parent:
    # every file it is asked for is outside what it was given.
    location("/files-up", "file-lister", "WasmEnableCGI On", "WasmMapDir /data {root}/data", "WasmArg /data/.."),
    # The control: the same guest given the whole server directory can read the same files.
    location("/files-all", "file-lister", "WasmEnableCGI On", "WasmMapDir /data {root}", "WasmArg /data"),
    location("/files-probe", "probe", "WasmEnableCGI On", "WasmMapDir /data {root}/data"),
    location("/entry", "reactor", "WasmEntryPoint greet"),
    location("/outer", "probe", "WasmArg args", "WasmArg outer", "WasmEnv A outer", "WasmEnv B outer"),
    """
<Location /outer/inner>
    WasmArg args
    WasmArg inner
    WasmEnv B inner
</Location>
<Location /outer/replaced>
    WasmModule """ + str(guest("hello")) + """
</Location>""",
])


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG)
    (apache.dir / "app").mkdir()
    (apache.dir / "app" / "main.py").write_text("print('hi')\n")
    data = apache.dir / "data"
    (data / "sub").mkdir(parents=True)
    (data / "notes.txt").write_text("some notes\n")
    (data / "sub" / "deep.bin").write_bytes(bytes(range(256)))
    # Outside the mapped directory, and readable by the children's user.
    (apache.dir / "outside.txt").write_text("OUTSIDE THE MAPPED DIRECTORY\n")
    os.chmod(apache.dir / "outside.txt", 0o644)
    os.chmod(apache.conf, 0o644)
    for name in ("php", "php-unmapped"):
        (apache.dir / "htdocs" / name).mkdir()
        (apache.dir / "htdocs" / name / "index.php").write_text("<?php echo 1;\n")
    for p in [data, data / "sub", apache.dir / "app"]:
        os.chmod(p, 0o755)
    with apache:
        yield apache


def lines(body):
    return body.decode().splitlines()


# -- the basics ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/hello", "/hello-p2"])
def test_hello_p1_and_p2(server, path):
    status, headers, body = server.get(path)
    assert status == 200
    assert body == b"Hello from WebAssembly!\n"
    assert headers["content-type"] == "text/plain"


def test_a_page_includes_what_wasm_handlers_serve():
    # mod_include runs its subrequests after the page's EOS has passed: the Wasm handler and
    # a WIT handler of the included URIs must still write their parts (they answered
    # nothing and wrote nothing while httpd's eos_sent alone told whether they had answered).
    config = location("/hello", "hello") + f"""
<Location /wit/>
    SetHandler phase-probe
</Location>
WasmApacheModule {guest("phase_probe", P2)}
<Directory {{root}}/htdocs>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
"""
    page = 'a: <!--#include virtual="/hello" -->b: <!--#include virtual="/wit/part" -->end\n'
    apache = Apache(config, extra_modules=["include"])
    (apache.dir / "htdocs" / "page.shtml").write_text(page)
    os.chmod(apache.dir / "htdocs" / "page.shtml", 0o644)
    with apache:
        status, _, body = apache.get("/page.shtml")
        assert status == 200
        assert body == b"a: Hello from WebAssembly!\nb: phase-probe handler uri=/wit/part\nend\n"


def test_configured_content_type_wins_over_default(server):
    status, headers, _ = server.get("/typed")
    assert status == 200 and headers["content-type"] == "text/html"


def test_head_has_headers_and_no_body(server):
    status, headers, body = server.request("HEAD", "/hello")
    assert status == 200 and body == b""
    assert headers["content-type"] == "text/plain"


def test_small_response_is_sent_whole_with_its_length_and_pipelining_keeps_order(server):
    # The handler hands a finished response to the client at once (before httpd looks for a
    # pipelined request); the content-length filter must still see the whole body.
    answers = server.pipelined_get(["/hello", "/args-a", "/hello-p2"])
    assert [a[0] for a in answers] == [200, 200, 200]
    assert answers[0][2] == answers[2][2] == b"Hello from WebAssembly!\n"
    assert answers[1][2].startswith(b"arg0=probe.wasm\n")
    for _, headers, body in answers:
        assert headers["content-length"] == str(len(body)) and "transfer-encoding" not in headers


# -- WasmArg, WasmEnv, merging -----------------------------------------------------------

def test_two_locations_share_one_module_with_different_args(server):
    a = lines(server.get("/args-a")[2])
    b = lines(server.get("/args-b")[2])
    assert a[:3] == ["arg0=probe.wasm", "arg1=args", "arg2=alpha"]
    assert b[:4] == ["arg0=probe.wasm", "arg1=args", "arg2=beta", "arg3=gamma"]
    # One file named by many sections is one slot, compiled once per child.
    assert server.error_log().count("cannot be prepared") == 0


def test_env_outside_cgi_mode_is_only_wasm_env(server):
    out = lines(server.get("/env")[2])
    env = [l for l in out if l.startswith("env:")]
    assert env == ["env:APP_MODE=production", "env:GREETING=hello world"]


def test_nested_location_merge(server):
    inner = lines(server.get("/outer/inner")[2])
    # WasmArg: the inner list replaces the outer one; WasmEnv: merged by name, inner wins.
    assert inner[:3] == ["arg0=probe.wasm", "arg1=args", "arg2=inner"]
    assert "env:A=outer" in inner and "env:B=inner" in inner
    outer = lines(server.get("/outer")[2])
    assert outer[2] == "arg2=outer" and "env:B=outer" in outer


def test_inner_wasm_module_replaces_outer(server):
    assert server.get("/outer/replaced")[2] == b"Hello from WebAssembly!\n"


def test_entry_point_of_a_reactor_module(server):
    status, _, body = server.get("/entry")
    assert status == 200 and body == b"greetings from an entry point\n"


# -- CGI ---------------------------------------------------------------------------------

def cgi_env(server, path, **kw):
    status, _, body = server.request(kw.pop("method", "GET"), path, **kw)
    assert status == 200, body
    return dict(l[4:].split("=", 1) for l in lines(body) if l.startswith("env:"))


def test_cgi_variables(server):
    env = cgi_env(server, "/cgi/users/7?do=args&x=1", method="POST", body=b"abc",
                  headers={"Content-Type": "text/plain", "X-Custom": "v1"})
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == "/cgi"
    assert env["PATH_INFO"] == "/users/7"
    assert env["QUERY_STRING"] == "do=args&x=1"
    assert env["REQUEST_URI"] == "/cgi/users/7?do=args&x=1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert env["HTTP_X_CUSTOM"] == "v1"
    assert env["APP_MODE"] == "production"
    assert env["SERVER_NAME"] == "overridden", "WasmEnv wins over a CGI variable"
    assert "PATH_TRANSLATED" in env and "SERVER_SOFTWARE" in env


def test_script_name_is_the_location_prefix(server):
    env = cgi_env(server, "/cgi?do=args")
    assert env["SCRIPT_NAME"] == "/cgi" and env.get("PATH_INFO", "") == ""


def test_cgi_p2_guest(server):
    env = cgi_env(server, "/cgi-p2/a/b?do=args")
    assert env["SCRIPT_NAME"] == "/cgi-p2" and env["PATH_INFO"] == "/a/b"


def test_map_dir_args_env_and_mapped_script_filename(server):
    status, headers, body = server.get("/app/users/7?q=1")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert "<li><code>/app/main.py</code></li>" in page
    assert "<tr><th>APP_MODE</th><td><code>production</code></td></tr>" in page
    assert "<tr><th>SCRIPT_NAME</th><td><code>/app</code></td></tr>" in page
    assert "<tr><th>PATH_INFO</th><td><code>/users/7</code></td></tr>" in page


def test_map_cgi_file_names(server):
    # SCRIPT_FILENAME is the host file httpd mapped the URL to; with WasmMapCGIFileNames On
    # it is the path the guest sees through the longest matching WasmMapDir.
    assert cgi_env(server, "/php/index.php?do=args")["SCRIPT_FILENAME"] == "/app/index.php"
    unmapped = cgi_env(server, "/php-unmapped/index.php?do=args")["SCRIPT_FILENAME"]
    assert unmapped == f"{server.dir}/htdocs/php-unmapped/index.php"


def test_status_header(server):
    status, headers, body = server.get("/cgi?do=status&v=201")
    assert status == 201 and headers["x-probe"] == "yes" and body == b"status 201\n"
    status, _, _ = server.get("/cgi?do=status&v=404")
    assert status == 404


def test_location_local_path_is_an_internal_redirect(server):
    status, _, body = server.get("/cgi?do=location&v=%2Fhello")
    assert status == 200 and body == b"Hello from WebAssembly!\n"


def test_location_absolute_url_is_a_302(server):
    status, headers, body = server.get("/cgi?do=location&v=http%3A%2F%2Fexample.com%2Fnew")
    assert status == 302
    assert headers["location"] == "http://example.com/new"
    assert b"this body is discarded" not in body


def test_malformed_header_block_is_500_with_one_log_line(server):
    status, _, _ = server.get("/cgi?do=malformed")
    assert status == 500
    assert server.wait_log("malformed header from script 'probe.wasm': Bad header: this line has no colon")


def test_no_output_in_cgi_mode_is_premature_end(server):
    status, _, _ = server.get("/cgi?do=no-headers")
    assert status == 500
    assert server.wait_log("End of script output before headers: probe.wasm")


# -- bodies ------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/echo", "/echo-p2"])
def test_10mb_post_is_echoed_byte_exact(server, path):
    payload = os.urandom(10 * 1024 * 1024)
    status, headers, body = server.duplex_request("POST", path, payload,
                                                  headers={"Content-Type": "application/x-test"})
    assert status == 200
    assert headers["content-type"] == "application/x-test"
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_chunked_upload(server):
    chunks = [os.urandom(n) for n in (1, 1000, 65536, 7, 300000)]
    status, _, body = server.request("POST", "/echo", body=iter(chunks), chunked=True,
                                     headers={"Transfer-Encoding": "chunked"})
    assert status == 200 and body == b"".join(chunks)


def test_limit_request_body_is_honoured(server):
    status, _, body = server.request("POST", "/limited?do=read", body=b"x" * 999)
    assert status == 200 and body == b"read 999 bytes\n"
    status, _, _ = server.request("POST", "/limited?do=read", body=b"x" * 5000)
    assert status == 413


@pytest.mark.parametrize("body", ["length", "chunked"])
def test_a_body_httpd_refuses_gets_exactly_one_response(server, body):
    # httpd's own body filter answers 413 itself (LimitRequestBody); the program's failed
    # read must not make httpd send a second error page after it.
    head = b"POST /limited?do=read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if body == "length":
        request = head + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000
    else:
        request = head + b"Transfer-Encoding: chunked\r\n\r\n" + (b"2bc\r\n" + b"y" * 700 + b"\r\n") * 2 + b"0\r\n\r\n"
    received = server.raw_exchange(request)
    assert received.startswith(b"HTTP/1.1 413 ")
    assert received.count(b"HTTP/1.1 ") == 1, received.decode(errors="replace")


def test_limit_request_body_applies_to_chunked_bodies(server):
    chunks = [b"y" * 700, b"y" * 700]
    status, _, _ = server.request("POST", "/limited?do=read", body=iter(chunks), chunked=True,
                                  headers={"Transfer-Encoding": "chunked"})
    assert status == 413


def test_binary_output_is_byte_exact(server):
    status, _, body = server.get("/cgi?do=binary")
    assert status == 200 and body == bytes(range(256)) * 4


def pattern(n):
    return bytes((i * 31) % 251 for i in range(n))


def test_100mb_download_streams_without_buffering(server):
    size = 100 * 1024 * 1024
    # Warm up, so the child's peak memory below reflects only the download.
    assert server.get("/cgi?do=download&n=1000")[2] == pattern(1000)
    children = server.children()
    before = {pid: vm_kib(pid, "VmHWM") for pid in children}
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    c.request("GET", f"/cgi?do=download&n={size}")
    r = c.getresponse()
    assert r.status == 200
    digest, total, expected = hashlib.sha256(), 0, hashlib.sha256()
    block = pattern(251 * 1024)  # the pattern repeats every 251 bytes
    while chunk := r.read(1024 * 1024):
        digest.update(chunk)
        total += len(chunk)
    c.close()
    for off in range(0, size, len(block)):
        expected.update(block[: min(len(block), size - off)])
    assert total == size and digest.hexdigest() == expected.hexdigest()
    growth_mib = max(vm_kib(pid, "VmHWM") - before[pid] for pid in children) / 1024
    assert growth_mib < 32, f"a child's peak memory grew by {growth_mib:.0f} MiB"


# -- WasmMapDir / WasmDir ------------------------------------------------------------------

def test_file_lister_over_map_dir(server):
    status, _, body = server.get("/files/")
    page = body.decode()
    assert status == 200
    assert '<a href="/files/notes.txt">notes.txt</a>' in page
    assert '<a href="/files/sub/">sub/</a>' in page
    status, _, body = server.get("/files/sub/deep.bin")
    assert status == 200 and body == bytes(range(256))


def test_wasm_dir_preopens_at_the_same_path(server):
    status, _, body = server.get("/samepath/notes.txt")
    assert status == 200 and body == b"some notes\n"


SECRET = b"OUTSIDE THE MAPPED DIRECTORY\n"


def test_guest_cannot_leave_its_directories(server):
    # httpd resolves `..` in the URL path itself before any handler runs (it refuses %2F by
    # default, and with AllowEncodedSlashes On it decodes and then re-normalises), so a URL
    # cannot hand the guest a PATH_INFO with `..` in it: these never reach the guest. Nothing
    # outside may be served all the same.
    for url in ["/files/..%2F..%2Fhttpd.conf", "/files/../httpd.conf", "/files/..%2Foutside.txt"]:
        status, _, body = server.get(url)
        assert status in (400, 404) and b"ServerRoot" not in body and SECRET not in body, url

    # The control: these files exist and the guest can read them when they are mapped.
    status, _, body = server.get("/files-all/outside.txt")
    assert status == 200 and body == SECRET
    status, _, body = server.get("/files-all/httpd.conf")
    assert status == 200 and b"ServerRoot" in body

    # /files-up's file-lister is rooted at /data/.., so it opens /data/../outside.txt: the guest
    # itself tries to leave its mapped directory. Its own 404 (text/plain, "PATH_INFO: error";
    # httpd's is HTML) shows it ran; only the sandbox keeps the file from being served.
    for name, content in [("outside.txt", SECRET), ("httpd.conf", b"ServerRoot")]:
        status, headers, body = server.get(f"/files-up/{name}")
        assert status == 404 and headers["content-type"] == "text/plain", (name, status, body)
        assert body.startswith(f"/{name}: ".encode()) and b"os error" in body, body
        assert content not in body
    status, _, body = server.get("/files-up/")
    assert status == 404 and body.startswith(b"/: ") and b"notes.txt" not in body  # no listing of ..

    # Any path, as the guest spells it: `..` within the directory works, out of it is refused.
    def open_(path):
        status, headers, body = server.get(f"/files-probe?do=open&v={path}")
        assert status == 200 and headers["content-type"] == "text/plain", (path, status, body)
        return body.decode()
    assert open_("/data/sub/../notes.txt") == "read 11 bytes\n"
    for path in ["/data/../outside.txt", "/data/sub/../../outside.txt", "/data/../httpd.conf",
                 "/data/./../outside.txt", "/outside.txt"]:
        assert open_(path).startswith("refused: "), path


# -- failures ------------------------------------------------------------------------------

def test_stderr_goes_to_the_error_log(server):
    status, _, body = server.get("/cgi?do=stderr&n=3")
    assert status == 200 and body == b"wrote 3 lines to stderr\n"
    for i in range(3):
        assert server.wait_log(f"probe.wasm: probe stderr line {i}")


def test_nonzero_exit_before_output_is_500(server):
    status, _, _ = server.get("/cgi?do=exit&n=3")
    assert status == 500
    assert server.wait_log("probe.wasm: exited with status 3")


def test_nonzero_exit_after_output_is_logged(server):
    status, _, body = server.get("/cgi?do=exit-after&n=4")
    assert status == 200 and body == b"partial output\n"
    assert server.wait_log("probe.wasm: exited with status 4 after 15 bytes of the response body")


def test_trap_is_500_and_the_worker_keeps_serving(server):
    children = set(server.children())
    for _ in range(3):
        status, _, _ = server.get("/cgi?do=trap")
        assert status == 500
    assert server.wait_log("wasm `unreachable` instruction executed")
    assert server.get("/hello")[2] == b"Hello from WebAssembly!\n"
    assert set(server.children()) == children, "no child died"
    assert "exit signal" not in server.error_log()
