"""wasi:http components (the `wasi:http/proxy` world `wasmtime serve` runs) as the content
handler, against a real apache2. The components are written the way their own ecosystems
document it, not with mod_wasm's SDK: tests/guests/http-app with the wstd crate (routes named
by the path's last segment), tests/guests/http-python with componentize-py."""

import hashlib
import http.client
import socket
import ssl
import subprocess
import time

import pytest

from harness import Apache, guest, location, refused_at_startup, vm_kib

P2 = "wasm32-wasip2"


def app(path, *directives):
    return location(path, "http-app", *directives, target=P2)


CONFIG = "\n".join([
    app("/app"),
    app("/env", "WasmEnv GREETING 'hello there'", "WasmMapDir /data {root}/data"),
    app("/limited", "WasmTimeout 500ms", "WasmMemoryLimit 32M"),
    app("/big", "LimitRequestBody 0"),
    # Outgoing requests: this server itself is the backend on the loopback interface.
    app("/fetch-allowed", "WasmHttpOutgoing http://127.0.0.1:{port}"),
    app("/fetch-other", "WasmHttpOutgoing http://127.0.0.1:1 https://127.0.0.1:{port}"),
    app("/fetch-none"),
    app("/fetch-slow", "WasmHttpOutgoing http://127.0.0.1:{slow_port}", "WasmTimeout 1s"),
    # Other modules' hooks and filters around the component, as for any handler.
    app("/around", "WasmApacheModule " + str(guest("ext_probe", P2)) + " deny-private-access",
        "Header set X-Around yes", "SetOutputFilter SUBSTITUTE", "Substitute s/Hello/Howdy/"),
    location("/py", "http-python", target=P2),
])


@pytest.fixture(scope="module")
def slow_backend():
    """A loopback listener that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture(scope="module")
def server(slow_backend):
    apache = Apache(CONFIG.replace("{slow_port}", str(slow_backend)),
                    extra_modules=["headers", "substitute", "filter"], log_level="warn wasm:info")
    apache.add_files({"hello.txt": "hello from httpd itself\n"})
    apache.add_files({"note.txt": "a file in a mapped directory\n"}, under="data")
    with apache:
        yield apache


def served_by_guest(server, mark, path):
    """The component's own stdout line for `path` (it prints one per request)."""
    return server.wait_log(f"http-app serving {path}", since=mark)


def test_a_wasi_http_component_serves_hello(server):
    mark = server.log_mark()
    status, headers, body = server.get("/app/hello")
    assert (status, body) == (200, b"Hello from a wasi:http component\n")
    assert served_by_guest(server, mark, "/app/hello")
    # What the component did not set, httpd does not invent (mod_mime's type for the URI).
    assert "content-type" not in headers


def test_the_component_sees_the_request_as_the_client_sent_it(server):
    status, _, body = server.request("POST", "/app/request?q=a%20b&x=%2F", body=b"x",
                                     headers={"X-Custom": "one", "Connection": "keep-alive",
                                              "Keep-Alive": "timeout=5", "Accept": "text/plain"})
    text = body.decode()
    assert status == 200
    assert "method: POST\n" in text
    # Scheme, authority (the Host header as sent) and the path with its query undecoded.
    assert f"uri: http://127.0.0.1:{server.port}/app/request?q=a%20b&x=%2F\n" in text
    assert "header: x-custom: one\n" in text and "header: accept: text/plain\n" in text
    assert "header: content-length: 1\n" in text
    # Hop-by-hop fields are removed, as wasi:http specifies (and Host is the authority).
    for name in ("connection", "keep-alive", "host"):
        assert f"header: {name}:" not in text, text


def test_over_tls_the_scheme_is_https():
    """mod_ssl in front: the component is told `https`, as a wasi:http host behind TLS must."""
    apache = Apache(app("/app"), extra_modules=["socache_shmcb", "ssl"])
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(apache.dir / "key.pem"), "-out", str(apache.dir / "cert.pem")],
                   check=True, capture_output=True)
    apache.conf.write_text(apache.conf.read_text() + f"""
SSLEngine on
SSLCertificateFile {apache.dir}/cert.pem
SSLCertificateKeyFile {apache.dir}/key.pem
""")
    with apache:
        c = http.client.HTTPSConnection("127.0.0.1", apache.port, timeout=30,
                                        context=ssl._create_unverified_context())
        c.request("GET", "/app/request?tls=1")
        r = c.getresponse()
        body = r.read().decode()
        c.close()
    assert r.status == 200 and f"uri: https://127.0.0.1:{apache.port}/app/request?tls=1\n" in body, body


def test_status_and_headers_come_from_the_component(server):
    raw = server.raw_get("/app/headers").decode()
    head = raw.split("\r\n\r\n")[0] + "\r\n"
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Type: text/x-probe\r\n" in head and "x-one: 1\r\n" in head
    assert "set-cookie: a=1\r\n" in head and "set-cookie: b=2\r\n" in head
    # A code httpd has no text for keeps its own reason phrase instead of becoming 500.
    assert server.raw_get("/app/status?code=418").startswith(b"HTTP/1.1 418 I'm a teapot\r\n")
    for code in (201, 404, 503):
        status, _, body = server.get(f"/app/status?code={code}")
        assert (status, body) == (code, f"status {code}\n".encode())
    status, _, body = server.get("/app/status?code=204")
    assert (status, body) == (204, b"")


def test_head_gets_the_headers_without_the_body(server):
    status, headers, body = server.request("HEAD", "/app/headers")
    assert (status, body, headers["content-type"]) == (200, b"", "text/x-probe")


def test_a_body_is_echoed_as_it_streams(server):
    data = bytes(range(256)) * 8192  # 2 MiB
    status, _, body = server.request("POST", "/app/echo", body=iter([data[i:i + 65536] for i in range(0, len(data), 65536)]),
                                     chunked=True)
    assert status == 200 and body == data
    status, _, body = server.duplex_request("PUT", "/app/echo", data)
    assert status == 200 and body == data


def test_a_multi_chunk_body_reaches_the_client_as_it_is_written(server):
    """The component writes a line, waits 2 s, writes another: the first must be on the wire
    before the second is written (flushed when the component waits), not held to the end."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /app/chunks?n=2&ms=2000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        start, received = time.monotonic(), b""
        while b"chunk 0\n" not in received:
            received += sock.recv(65536)
        first = time.monotonic() - start
        assert b"chunk 1\n" not in received
        while chunk := sock.recv(65536):
            received += chunk
    assert first < 1.5, f"the first chunk took {first:.1f} s: it waited for the second"
    assert b"Transfer-Encoding: chunked" in received and received.endswith(b"chunk 1\n\r\n0\r\n\r\n")


def test_a_panic_before_the_response_answers_500_and_one_log_line_names_the_module(server):
    mark = server.log_mark()
    status, _, _ = server.get("/app/panic")
    assert status == 500
    assert server.wait_log("wasm trap: wasm `unreachable` instruction executed", since=mark)
    trap_lines = [l for l in server.log_since(mark).splitlines() if "wasm trap" in l]
    assert len(trap_lines) == 1 and str(guest("http-app", P2)) in trap_lines[0]
    # The component's panic message (its stderr) is logged too, and the worker goes on.
    assert "http-app panics on purpose" in server.log_since(mark)
    assert server.get("/app/hello")[0] == 200


def test_a_panic_after_the_response_began_cuts_it(server):
    mark = server.log_mark()
    raw = server.raw_get("/app/panic-in-body")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Transfer-Encoding: chunked" in head
    assert b"line 0" in body and not body.endswith(b"0\r\n\r\n"), "the client must see the body is incomplete"
    assert server.wait_log("instruction executed after 28000 bytes of the response body", since=mark)
    assert server.get("/app/hello")[0] == 200


def test_wasm_timeout_stops_a_sleeping_and_a_spinning_component(server):
    for path in ("/limited/sleep?ms=10000", "/limited/spin?ms=10000"):
        mark = server.log_mark()
        start = time.monotonic()
        status, _, _ = server.get(path)
        assert status == 503 and time.monotonic() - start < 5
        assert server.wait_log("stopped at its deadline (WasmTimeout 500ms)", since=mark)


def test_wasm_memory_limit_applies(server):
    mark = server.log_mark()
    assert server.get("/limited/alloc?mib=64")[0] == 500
    assert server.wait_log("memory limit exceeded", since=mark)
    status, _, body = server.get("/limited/alloc?mib=8")
    assert (status, body) == (200, b"allocated 8 MiB\n")


def test_wasm_env_and_map_dir_apply(server):
    assert server.get("/env/env?name=GREETING")[2] == b"GREETING=hello there\n"
    status, _, body = server.get("/env/file?path=/data/note.txt")
    assert (status, body) == (200, b"a file in a mapped directory\n")
    assert server.get("/env/file?path=/etc/passwd")[0] == 404


def test_outgoing_requests_go_only_to_allowed_origins(server):
    origin = f"http://127.0.0.1:{server.port}"
    status, _, body = server.get(f"/fetch-allowed/fetch?url={origin}/hello.txt")
    assert (status, body) == (200, b"backend said 200: hello from httpd itself\n")

    for path in ("/fetch-none", "/fetch-other"):
        mark = server.log_mark()
        status, _, body = server.get(f"{path}/fetch?url={origin}/hello.txt")
        assert status == 502 and b"HttpRequestDenied" in body, body
        assert server.wait_log(f"outgoing request to {origin} refused", since=mark)
    # The allowed origin's port counts: another port of the same host is refused.
    mark = server.log_mark()
    status, _, body = server.get(f"/fetch-allowed/fetch?url=http://127.0.0.1:{server.port + 1}/")
    assert status == 502 and b"HttpRequestDenied" in body


def test_an_outgoing_request_ends_at_wasm_timeout(server, slow_backend):
    mark = server.log_mark()
    start = time.monotonic()
    status, _, _ = server.get(f"/fetch-slow/fetch?url=http://127.0.0.1:{slow_backend}/")
    assert status == 503 and time.monotonic() - start < 10
    assert server.wait_log("stopped at its deadline (WasmTimeout 1s)", since=mark)


def test_hooks_and_filters_of_other_modules_run_around_the_component(server):
    mark = server.log_mark()
    status, headers, body = server.get("/around/hello")
    assert (status, body) == (200, b"Howdy from a wasi:http component\n")
    assert headers["x-around"] == "yes"
    assert server.wait_log("ext-probe access-checker uri=/around/hello", since=mark)
    # Refused by the extension module's access checker: the component is never called.
    mark = server.log_mark()
    assert server.get("/around/private/hello")[0] == 403
    server.get("/app/hello")
    assert served_by_guest(server, mark, "/app/hello")
    assert "serving /around/private/hello" not in server.log_since(mark)


GIB = 1 << 30


def peak_growth_mib(server, before):
    return max(vm_kib(pid, "VmHWM") - before[pid] for pid in before) / 1024


def test_a_1gib_download_and_upload_stream_in_bounded_memory(server):
    assert server.get("/big/big?mib=4")[0] == 200  # warm up: the peak below is the transfer's
    before = {pid: vm_kib(pid, "VmHWM") for pid in server.children()}

    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    c.request("GET", "/big/big?mib=1024")
    r = c.getresponse()
    total = 0
    while chunk := r.read(1 << 20):
        assert chunk.count(b"x") == len(chunk)
        total += len(chunk)
    c.close()
    assert r.status == 200 and total == GIB
    growth = peak_growth_mib(server, before)
    assert growth < 64, f"a child's peak memory grew by {growth:.0f} MiB for a 1 GiB download"

    piece = b"u" * (1 << 20)
    status, _, body = server.request("POST", "/big/count", body=(piece for _ in range(1024)), chunked=True,
                                     timeout=300)
    assert status == 200 and body.startswith(f"read {GIB} bytes in ".encode()), body
    growth = peak_growth_mib(server, before)
    assert growth < 64, f"a child's peak memory grew by {growth:.0f} MiB for a 1 GiB upload"


# -- Python (componentize-py) ---------------------------------------------------------------

def test_a_python_component_serves(server):
    status, headers, body = server.get("/py/hello?lang=py")
    assert (status, body) == (200, b"Hello from Python, asked for /py/hello?lang=py\n")
    assert headers["x-language"] == "python" and headers["content-type"] == "text/plain"
    assert server.get("/py/nothing")[0] == 404


def test_a_python_component_streams_a_body_back(server):
    data = hashlib.sha256(b"seed").digest() * 40000  # 1.25 MiB
    status, headers, body = server.request("POST", "/py/echo", body=data, headers={"Content-Type": "application/x-test"})
    assert (status, headers["content-type"], body) == (200, "application/x-test", data)


def test_a_python_exception_answers_500_with_its_traceback_in_the_log(server):
    mark = server.log_mark()
    assert server.get("/py/fail")[0] == 500
    assert server.wait_log("RuntimeError: http-python fails on purpose", since=mark)
    assert server.get("/py/hello")[0] == 200


# -- configuration ----------------------------------------------------------------------------

def test_settings_that_mean_nothing_for_a_component_are_refused_at_startup():
    line, out = refused_at_startup(app("/a", "WasmEnableCGI On"), directive="WasmEnableCGI")
    assert "means nothing for" in out and "a wasi:http component" in out
    # Whichever comes first in the section.
    body = f"<Location /a>\n  WasmMapCGIFileNames On\n  WasmModule {guest('http-app', P2)}\n</Location>"
    line, out = refused_at_startup(body, directive="WasmModule")
    assert "WasmMapCGIFileNames means nothing for" in out
    line, out = refused_at_startup(location("/p", "hello", "WasmHttpOutgoing http://127.0.0.1:8080"),
                                   directive="WasmHttpOutgoing")
    assert "it is a program, not a wasi:http component" in out


def test_a_bad_origin_is_refused_at_startup():
    for origin in ("127.0.0.1:8080", "ftp://example.com", "http://example.com/path", "http://user@example.com"):
        line, out = refused_at_startup(app("/a", f"WasmHttpOutgoing {origin}"), directive="WasmHttpOutgoing")
        assert "is not an origin" in out, (origin, out)

