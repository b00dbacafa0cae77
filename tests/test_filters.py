"""Body filters (`WasmOutputFilter`, `WasmInputFilter`) on a real apache2: the examples, the
filter-probe guest's behaviours (its config words), httpd's producers and filters around
them, and the configuration errors.
"""

import gzip
import json
import http.client
import os
import re
import socket
import threading
import time

import pytest

from harness import Apache, guest, location, refused_at_startup, section, vm_kib

P2 = "wasm32-wasip2"
SNIPPET = "<script src=/rum.js></script>"
STREAM_MIB = 1024


def probe():
    return guest("filter_probe", P2)


def output_filters():
    """Every output filter the main server defines: name -> (module, config string)."""
    return {
        "UPPER": (probe(), "upper"),
        "UPPERCOUNT": (probe(), "upper count"),
        "HOLD": (probe(), "hold log-calls"),
        "LOGCALLS": (probe(), "upper log-calls"),
        "S403": (probe(), "status-403 log-calls"),
        "S200": (probe(), "status-200"),
        "TRAP1": (probe(), "trap-first"),
        "TRAP2": (probe(), "trap-second log-calls"),
        "TRAP10": (probe(), "trap-call=10 log-calls"),
        "SPIN": (probe(), "spin-first log-calls"),
        "GROW": (probe(), "grow-first"),
        "HDRS": (probe(), "headers upper"),
        "PASS": (probe(), "pass log-calls"),
        "TAGGED": (probe(), "tag"),
        "SUBSTCOUNT": (probe(), "subst=abc/X count"),
        "INJECT": (guest("html_inject", P2), SNIPPET),
        "REDACT": (guest("redact_email", P2), ""),
    }


def input_filters():
    return {
        "UPPERIN": (probe(), "upper log-calls"),
        "REFUSE": (probe(), "refuse-bad log-calls"),
        "SUBSTIN": (probe(), "subst=abc/ABCDEF log-calls"),
        "JSONCHECK": (guest("json_guard", P2), "max 1K"),
    }


def define(directive, filters):
    return "".join(f'{directive} {name} {module} "{config}"\n' if config else f"{directive} {name} {module}\n"
                   for name, (module, config) in filters.items())


def config(backend_port):
    return (define("WasmOutputFilter", output_filters()) + define("WasmInputFilter", input_filters()) + f"""
ScriptSock {{root}}/cgid.sock
LuaScope thread
<Directory {{root}}/htdocs/lua>
    SetHandler lua-script
</Directory>
<Directory {{root}}/htdocs/cgi>
    Options +ExecCGI
    SetHandler cgi-script
</Directory>
<Directory {{root}}/htdocs/ssi>
    Options +Includes
</Directory>
""" + "".join([
        section("/upper", "SetOutputFilter UPPERCOUNT"),
        section("/inject", "SetOutputFilter INJECT"),
        section("/bytype", "AddOutputFilterByType INJECT text/html"),
        section("/redact", "SetOutputFilter REDACT"),
        section("/stream", "SetOutputFilter UPPER"),
        section("/lua", "SetOutputFilter HOLD"),
        section("/s403", "SetOutputFilter S403"),
        section("/s403doc", "SetOutputFilter S403", 'ErrorDocument 403 "custom text"'),
        section("/s200", "SetOutputFilter S200"),
        section("/trap1", "SetOutputFilter TRAP1"),
        section("/trap2", "SetOutputFilter TRAP2"),
        section("/trap10", "SetOutputFilter TRAP10"),
        section("/spin", "SetOutputFilter SPIN", "WasmTimeout 1s"),
        section("/grow", "SetOutputFilter GROW", "WasmMemoryLimit 32M"),
        section("/headers", "SetOutputFilter HDRS"),
        section("/pass", "SetOutputFilter PASS"),
        section("/logcalls", "SetOutputFilter LOGCALLS"),
        section("/tagged", f"WasmApacheModule {probe()}", "SetOutputFilter TAGGED"),
        section("/addfilter", f"WasmApacheModule {probe()}"),
        section("/wasm-hello", "SetHandler wasm-handler", f"WasmModule {guest('hello')}", "SetOutputFilter UPPERCOUNT"),
        section("/cgi", "SetOutputFilter UPPERCOUNT"),
        section("/proxy/", f"ProxyPass http://127.0.0.1:{backend_port}/", "SetOutputFilter UPPERCOUNT"),
        section("/wit", "SetHandler wasm-hello", f"WasmApacheModule {guest('conformance', P2)}",
           "SetOutputFilter UPPERCOUNT"),
        section("/deflate", "SetOutputFilter UPPER;DEFLATE"),
        section("/ssi", "SetOutputFilter INCLUDES;UPPERCOUNT"),
        "FilterDeclare UPPERF\nFilterProvider UPPERF UPPER \"%{CONTENT_TYPE} =~ m#^text/plain#\"\n",
        section("/modfilter", "FilterChain UPPERF"),
        location("/echo-upper", "echo", "WasmEnableCGI On", "SetInputFilter UPPERIN"),
        location("/echo-refuse", "echo", "WasmEnableCGI On", "SetInputFilter REFUSE"),
        section("/wit-api", "SetHandler json-api", f"WasmApacheModule {guest('json_api', P2)}", "SetInputFilter UPPERIN"),
        location("/echo-refuse-upper", "echo", "WasmEnableCGI On", "SetInputFilter REFUSE", "SetOutputFilter UPPER"),
        section("/own-body", "SetHandler filter-probe", f"WasmApacheModule {probe()}", "SetOutputFilter SUBSTCOUNT"),
        location("/api", "echo", "WasmEnableCGI On", "SetInputFilter JSONCHECK"),
        section("/pin/", f"ProxyPass http://127.0.0.1:{backend_port}/echo/", "SetInputFilter SUBSTIN"),
    ]))


def big_text(size):
    line = "the quick brown fox jumps over the lazy dog 0123456789\n"
    return (line * (size // len(line) + 1))[:size]


# Addresses in the redaction file: one of them crosses byte 65536, the host's piece boundary.
ADDRESSES = ["ann@example.org", "help.desk+web@support.example.co.uk", "boundary.case@straddle.example.com"]


def redaction_file():
    text = list(big_text(200 * 1024))
    def put(at, s):
        text[at:at + len(s)] = s
    put(100, " " + ADDRESSES[0] + " ")
    straddling = " " + ADDRESSES[2] + " "
    put(65536 - 10, straddling)
    put(150_000, " " + ADDRESSES[1] + ".")
    return "".join(text)


LUA_FLUSH = """
function handle(r)
    r.content_type = "text/plain"
    r:puts("first part\\n")
    r:flush()
    os.execute("sleep 1")
    r:puts("second part\\n")
    return apache2.OK
end
"""

CGI_SCRIPT = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\nhello from cgid\\n'\n"


def write(apache, rel, data):
    path = apache.dir / "htdocs" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def backend():
    """A second httpd: static files and the echo program, for mod_proxy."""
    apache = Apache(location("/echo/", "echo", "WasmEnableCGI On"))
    write(apache, "static.txt", "proxied static file\n")
    apache.make_readable()
    with apache:
        yield apache


@pytest.fixture(scope="module")
def server(backend):
    apache = Apache(config(backend.port), extra_modules=[
        "filter", "deflate", "include", "lua", "cgid", "proxy", "proxy_http"])
    write(apache, "upper/file.txt", "hello filters\n")
    write(apache, "inject/page.html", "<html><head><title>Hi</title></HEAD><body>x</body></html>\n")
    write(apache, "inject/nohead.html", "<html><body>no head here</body></html>\n")
    write(apache, "bytype/page.html", "<html><head></head></html>\n")
    write(apache, "bytype/page.txt", "<head></head> not html\n")
    write(apache, "redact/contact.txt", "Sales: sales@example.com, support: help.desk+web@support.example.co.uk.\n")
    write(apache, "redact/big.txt", redaction_file())
    write(apache, "lua/flush.lua", LUA_FLUSH)
    big = big_text(200 * 1024)
    for d in ["grow", "s403", "s403doc", "s200", "trap1", "spin", "headers", "pass", "logcalls", "tagged", "addfilter",
              "modfilter"]:
        write(apache, f"{d}/small.txt", "small file\n")
    # mod_deflate leaves very small bodies alone.
    write(apache, "deflate/lines.txt", "a line of text\n" * 1000)
    write(apache, "trap2/big.txt", big)
    write(apache, "trap10/big.txt", big_text(1024 * 1024))
    write(apache, "logcalls/big.txt", big)
    write(apache, "modfilter/page.html", "<p>html stays</p>\n")
    write(apache, "cgi/hello.cgi", CGI_SCRIPT)
    write(apache, "ssi/page.shtml", 'page <!--#include virtual="/ssi/part.txt" --> end\n')
    write(apache, "ssi/part.txt", "included text")
    stream = write(apache, "stream/zeros.bin", b"")
    os.truncate(stream, STREAM_MIB << 20)
    apache.make_readable()
    with apache:
        yield apache


def own_lines(server, mark, needle):
    return [line for line in server.log_since(mark).splitlines() if needle in line]


def probe_calls(server, mark, direction="output"):
    """The filter-probe `log-calls` lines since `mark`: [(bytes, at)]."""
    return [(int(m.group(1)), m.group(2))
            for m in re.finditer(rf"filter-probe {direction} (\d+) (more|flush|end)", server.log_since(mark))]


# -- static files through output filters -----------------------------------------------------

def test_static_file_is_transformed_with_new_length_and_no_etag(server):
    """The body is the guest's output; Content-Length is the new length or absent, no ETag."""
    status, headers, body = server.get("/upper/file.txt")
    assert status == 200
    assert body == b"HELLO FILTERS\n[calls=2 bytes=14]", body
    assert headers.get("content-length", str(len(body))) == str(len(body))
    assert "etag" not in headers


def test_html_inject_before_upper_case_head_end(server):
    """The snippet goes in just before `</HEAD>`, which keeps its case."""
    status, _, body = server.get("/inject/page.html")
    assert status == 200
    assert body == f"<html><head><title>Hi</title>{SNIPPET}</HEAD><body>x</body></html>\n".encode()


def test_html_inject_leaves_a_page_without_head_unchanged(server):
    """The body is unchanged; the guest did see it (it emitted the body: no ETag)."""
    status, headers, body = server.get("/inject/nohead.html")
    assert status == 200 and body == b"<html><body>no head here</body></html>\n"
    assert "etag" not in headers


def test_html_inject_by_type(server):
    """`AddOutputFilterByType INJECT text/html` (mod_filter) filters .html, not .txt."""
    mark = server.log_mark()
    status, _, body = server.get("/bytype/page.html")
    assert status == 200
    assert body == f"<html><head>{SNIPPET}</head></html>\n".encode(), (body, server.log_since(mark))
    status, headers, body = server.get("/bytype/page.txt")
    assert status == 200 and body == b"<head></head> not html\n"
    assert headers["content-length"] == str(len(body)) and "etag" in headers


def test_file_is_given_to_the_guest_in_pieces_of_64_kib(server):
    """A 200 KiB file: pieces of at most 65536 bytes (the first one full), then `end`."""
    mark = server.log_mark()
    status, _, body = server.get("/logcalls/big.txt")
    assert status == 200 and body == big_text(200 * 1024).upper().encode()
    calls = probe_calls(server, mark)
    assert calls[0] == (65536, "more") and calls[-1] == (0, "end"), calls
    assert all(n <= 65536 and at == "more" for n, at in calls[:-1]), calls
    assert sum(n for n, _ in calls) == 200 * 1024


def test_redact_email(server):
    status, _, body = server.get("/redact/contact.txt")
    assert status == 200 and body == b"Sales: [redacted], support: [redacted].\n"


def test_redact_email_across_the_piece_boundary(server):
    """A ~200 KB file whose second address crosses byte 65536 (guests get 64 KiB pieces)."""
    original = redaction_file()
    status, _, body = server.get("/redact/big.txt")
    expected = original
    for address in ADDRESSES:
        expected = expected.replace(address, "[redacted]")
    assert status == 200
    assert b"@" not in body and body.count(b"[redacted]") == 3
    assert body == expected.encode()


def test_large_file_streams_in_bounded_memory(server):
    """A 1 GiB (sparse, zero) file through `upper`, read 1 MiB at a time: every
    byte arrives and the serving child's resident memory grows by less than 64 MiB."""
    children = server.children()
    base = {pid: vm_kib(pid, "VmRSS") for pid in children}
    peak = dict(base)
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid in children:
                try:
                    peak[pid] = max(peak[pid], vm_kib(pid, "VmRSS"))
                except (OSError, KeyError):
                    pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        c.request("GET", "/stream/zeros.bin")
        r = c.getresponse()
        # The guest changed the response (no Content-Length: httpd chunks a streamed body).
        assert r.status == 200 and r.getheader("Content-Length") is None and r.chunked
        total, nonzero = 0, 0
        while chunk := r.read(1 << 20):
            total += len(chunk)
            nonzero += len(chunk) - chunk.count(0)
    finally:
        done.set()
        sampler.join()
        c.close()
    assert total == STREAM_MIB << 20 and nonzero == 0
    growth = max(peak[pid] - base[pid] for pid in children)
    assert growth < 64 * 1024, f"RSS grew by {growth} KiB"


# -- FLUSH -----------------------------------------------------------------------------------

def timed_get(server, path):
    """[(seconds since the request, bytes)] as they arrive on a raw socket."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        start = time.monotonic()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        arrivals = []
        while data := sock.recv(65536):
            arrivals.append((time.monotonic() - start, data))
    return arrivals


def test_flush_sends_what_the_guest_held(server):
    """mod_lua writes, flushes, sleeps 1 s, writes: through `hold` (emits only at a flush or
    the end) the first part still arrives a good while before the second."""
    mark = server.log_mark()
    arrivals = timed_get(server, "/lua/flush.lua")
    wire = b"".join(d for _, d in arrivals)
    assert wire.startswith(b"HTTP/1.1 200 ")
    assert b"first part\n" in wire and b"second part\n" in wire, wire
    received = b""
    for t, data in arrivals:
        received += data
        if b"first part" in received:
            first = t
            break
    assert b"second part" not in received, "both parts arrived together"
    assert arrivals[-1][0] - first >= 0.5, arrivals
    assert server.wait_log("filter-probe output 0 end", since=mark)
    calls = probe_calls(server, mark)
    assert any(at == "flush" for _, at in calls), calls


# -- answering instead, failures ------------------------------------------------------------

def test_status_before_the_first_byte_is_httpds_error_response(server):
    mark = server.log_mark()
    status, _, body = server.get("/s403/small.txt")
    assert status == 403 and b"<title>403 Forbidden</title>" in body and b"small file" not in body
    assert probe_calls(server, mark) == [(11, "more")]


def test_status_from_a_filter_uses_error_document(server):
    status, _, body = server.get("/s403doc/small.txt")
    assert status == 403 and body == b"custom text"


def failed_before_the_body(server, path):
    """`path` answers 500 without the file, and the one error line naming the module and
    the filter, which this returns."""
    mark = server.log_mark()
    status, _, body = server.get(path)
    assert status == 500 and b"small file" not in body
    assert server.wait_log("output-filter", since=mark)
    lines = own_lines(server, mark, "filter_probe.wasm")
    assert len(lines) == 1, lines
    assert f"{probe()}: output-filter: " in lines[0]
    return lines[0]


def test_status_outside_300_599_is_a_500_and_one_log_line(server):
    failed_before_the_body(server, "/s200/small.txt")


def test_trap_in_first_call_is_a_500_with_the_panic(server):
    assert "filter-probe was asked to fail in call 1" in failed_before_the_body(server, "/trap1/small.txt")


def test_trap_before_anything_went_on_is_a_500_even_in_a_later_call(server):
    """The first piece's output waits (it is passed on at 512 KiB or at the end): a trap in
    the second call still finds nothing sent, so the response becomes a 500."""
    mark = server.log_mark()
    status, _, body = server.get("/trap2/big.txt")
    assert status == 500 and b"Internal Server Error" in body
    assert server.wait_log("filter-probe was asked to fail in call 2", since=mark)
    lines = own_lines(server, mark, "filter_probe.wasm")
    assert len(lines) == 1 and f"{probe()}: output-filter: " in lines[0], lines
    assert probe_calls(server, mark)[0] == (65536, "more")


def test_trap_after_the_first_byte_cuts_the_response(server):
    """Nine 64 KiB pieces (576 KiB, more than the 512 KiB that are passed on at once) have
    gone out when the tenth call traps: the client sees an incomplete response, the log
    names the module, and the server goes on serving."""
    children = set(server.children())
    mark = server.log_mark()
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        c.request("GET", "/trap10/big.txt")
        r = c.getresponse()
        assert r.status == 200
        with pytest.raises(http.client.IncompleteRead) as cut:
            r.read()
        assert 512 * 1024 <= len(cut.value.partial) < 1024 * 1024
        assert cut.value.partial == big_text(1024 * 1024).encode()[:len(cut.value.partial)]
    finally:
        c.close()
    assert server.wait_log("filter-probe was asked to fail in call 10", since=mark)
    lines = own_lines(server, mark, "filter_probe.wasm")
    assert len(lines) == 1 and f"{probe()}: output-filter: " in lines[0], lines
    assert server.get("/upper/file.txt")[0] == 200
    assert set(server.children()) == children and "exit signal" not in server.error_log()


def test_spinning_filter_is_stopped_at_its_deadline(server):
    mark = server.log_mark()
    started = time.monotonic()
    status, _, _ = server.get("/spin/small.txt")
    assert status == 503 and time.monotonic() - started < 10
    assert server.wait_log("stopped at its deadline", since=mark)
    lines = own_lines(server, mark, "stopped at its deadline")
    assert len(lines) == 1 and f"{probe()}: output-filter: " in lines[0], lines
    assert probe_calls(server, mark) == [(11, "more")]


# -- headers, pass, no body ------------------------------------------------------------------

def test_filter_sets_headers_and_content_type(server):
    status, headers, body = server.get("/headers/small.txt")
    assert status == 200 and body == b"SMALL FILE\n"
    assert headers["x-filtered"] == "yes" and headers["content-type"] == "text/x-probe"


def test_pass_keeps_body_and_length(server):
    mark = server.log_mark()
    status, headers, body = server.get("/pass/small.txt")
    assert status == 200 and body == b"small file\n"
    assert headers["content-length"] == "11"
    assert server.wait_log("filter-probe output 11 more", since=mark)
    assert probe_calls(server, mark) == [(11, "more")]


def test_head_and_304_do_not_reach_the_filter(server):
    # The control: a GET reaches it.
    mark = server.log_mark()
    status, headers, body = server.get("/logcalls/small.txt")
    assert status == 200 and body == b"SMALL FILE\n"
    assert server.wait_log("filter-probe output", since=mark)
    last_modified = headers["last-modified"]

    mark = server.log_mark()
    status, headers, body = server.request("HEAD", "/logcalls/small.txt")
    assert status == 200 and body == b""
    status, _, body = server.get("/logcalls/small.txt", headers={"If-Modified-Since": last_modified})
    assert status == 304 and body == b""
    assert probe_calls(server, mark) == []


# -- hooks and filters together ----------------------------------------------------------------

def test_filter_runs_on_the_hooks_instance(server):
    """fixups reads X-Tag; the `tag` filter of the same request appends what it read."""
    status, _, body = server.get("/tagged/small.txt", headers={"X-Tag": "abc"})
    assert status == 200 and body == b"small file\n[tag=abc]"
    assert server.get("/tagged/small.txt")[2] == b"small file\n[tag=none]"


def test_hook_adds_a_filter(server):
    status, headers, body = server.get("/addfilter/small.txt", headers={"X-Add-Filter": "UPPER"})
    assert status == 200 and body == b"SMALL FILE\n" and "x-add-filter-error" not in headers
    status, headers, body = server.get("/addfilter/small.txt", headers={"X-Add-Filter": "NOPE"})
    assert status == 200 and body == b"small file\n"
    assert "x-add-filter-error" in headers


# -- producers -------------------------------------------------------------------------------

@pytest.mark.parametrize("path, produced", [
    ("/wasm-hello", b"Hello from WebAssembly!\n"),
    ("/cgi/hello.cgi", b"hello from cgid\n"),
    ("/proxy/static.txt", b"proxied static file\n"),
    ("/wit", b"Hello Wasm World!\n"),
])
def test_producers(server, path, produced):
    status, _, body = server.get(path)
    assert status == 200
    assert re.fullmatch(rb"(.*)\[calls=\d+ bytes=(\d+)\]", body, re.S), body
    text, count = re.fullmatch(rb"(.*)\[calls=\d+ bytes=(\d+)\]", body, re.S).groups()
    assert text == produced.upper() and int(count) == len(produced)


# -- composition ---------------------------------------------------------------------------------

def test_deflate_after_the_filter(server):
    status, headers, body = server.get("/deflate/lines.txt", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip"
    assert gzip.decompress(body) == b"A LINE OF TEXT\n" * 1000


def test_includes_before_the_filter_filter_once(server):
    """The included file's body flows into the page's: upper-cased, counted once."""
    status, _, body = server.get("/ssi/page.shtml")
    assert status == 200
    assert re.fullmatch(rb"PAGE INCLUDED TEXT END\n\[calls=\d+ bytes=\d+\]", body), body
    assert body.count(b"[calls=") == 1


def test_mod_filter_provider(server):
    """FilterProvider UPPERF UPPER "%{CONTENT_TYPE} =~ m#^text/plain#" and FilterChain UPPERF."""
    mark = server.log_mark()
    status, _, body = server.get("/modfilter/small.txt")
    assert status == 200
    assert body == b"SMALL FILE\n", (body, server.log_since(mark))
    status, _, body = server.get("/modfilter/page.html")
    assert status == 200 and body == b"<p>html stays</p>\n"


# -- input filters -------------------------------------------------------------------------------

def test_input_filter_in_front_of_a_wasm_program(server):
    mark = server.log_mark()
    status, _, body = server.request("POST", "/echo-upper", body=b"hello input")
    assert status == 200 and body == b"HELLO INPUT"
    assert probe_calls(server, mark, "input")[-1][1] == "end"


def test_input_filter_on_a_chunked_body(server):
    pieces = [b"abc" * 1000, b"def" * 30000, b"xyz"]
    status, _, body = server.request("POST", "/echo-upper", body=iter(pieces), chunked=True)
    assert status == 200 and body == b"".join(pieces).upper()


def test_input_filter_refuses_with_400(server):
    mark = server.log_mark()
    status, headers, body = server.request("POST", "/echo-refuse", body=b"this is bad input")
    assert status == 400 and b"<title>400 Bad Request</title>" in body and headers["connection"] == "close"
    assert body.endswith(b"</html>\n"), body
    assert probe_calls(server, mark, "input")
    status, _, body = server.request("POST", "/echo-refuse", body=b"this is fine input")
    assert status == 200 and body == b"this is fine input"


def test_json_guard(server):
    valid = b'{"id": 7, "tags": ["a", "b"]}'
    status, _, body = server.request("POST", "/api", body=valid, headers={"Content-Type": "application/json"})
    assert status == 200 and body == valid
    mark = server.log_mark()
    status, _, body = server.request("POST", "/api", body=b'{"id": 7,}')
    assert status == 400 and b"<title>400 Bad Request</title>" in body and body.endswith(b"</html>\n")
    assert server.wait_log("json-guard: invalid JSON: ", since=mark)
    assert "[wasm:warn]" in own_lines(server, mark, "json-guard: invalid JSON")[0]
    status, _, _ = server.request("POST", "/api", body=b"[" + b"1," * 1024 + b"1]")
    assert status == 413


def test_input_filter_in_front_of_mod_proxy(server, backend):
    """The backend (the echo program) receives the transformed body, its new length too."""
    mark = server.log_mark()
    status, _, body = server.request("POST", "/pin/", body=b"xabcx abc")
    assert status == 200 and body == b"xABCDEFx ABCDEF"
    assert probe_calls(server, mark, "input")


# -- configuration errors ------------------------------------------------------------------------

def test_filter_definition_not_allowed_in_a_location():
    line, out = refused_at_startup(f"<Location /x>\n    WasmOutputFilter UP {probe()}\n</Location>\n")
    assert line.startswith("WasmOutputFilter UP") and "not allowed" in out


def test_module_without_the_filter_export():
    line, out = refused_at_startup(f"WasmOutputFilter AC {guest('access_control', P2)}\n")
    assert line.startswith("WasmOutputFilter AC") and "output-filter" in out


def test_filter_defined_twice():
    line, out = refused_at_startup(f"WasmOutputFilter TWICE {probe()}\nWasmOutputFilter TWICE {probe()} \"upper\"\n")
    assert line == f'WasmOutputFilter TWICE {probe()} "upper"' and "already defined" in out


def test_bad_filter_name():
    line, out = refused_at_startup(f"WasmInputFilter a/b {probe()}\n")
    assert line.startswith("WasmInputFilter a/b") and "is not a filter name" in out


# -- found in review ---------------------------------------------------------------------------

def test_refusal_page_passes_through_an_output_filter_of_the_same_request(server):
    """An input filter refuses the body while a Wasm output filter is on the response (the
    error bucket reaches that filter first): httpd's error page reaches the client whole."""
    status, headers, body = server.request("POST", "/echo-refuse-upper", body=b"a bad body")
    assert status == 400, (status, body)
    assert b"Bad Request" in body and body.endswith(b"</html>\n"), body


def test_a_handler_writing_its_own_body_through_its_own_filter_keeps_one_stream(server):
    """The module's handler writes 6000 small pieces while it runs (httpd calls the filter
    during the hook, on a second instance, as the first is busy) and the rest after it: every
    piece of the body must reach the same instance, so no held-back tail is lost and the
    count at the end covers the whole body."""
    mark = server.log_mark()
    status, _, body = server.get("/own-body/")
    assert status == 200, (status, body, server.log_since(mark))
    text = body.decode()
    assert text.startswith("xxXxx" * 3000), text[:200]
    assert re.fullmatch(r"\[calls=\d+ bytes=21000\]", text[len("xxXxx") * 3000:]), text[-100:]


def test_memory_limit_applies_to_filters(server):
    """A filter asking for more memory than WasmMemoryLimit fails its response with 500 and
    one line naming the module and the filter, and the worker keeps serving."""
    mark = server.log_mark()
    status, _, _ = server.get("/grow/small.txt")
    assert status == 500
    assert server.wait_log("memory limit exceeded", since=mark)
    lines = own_lines(server, mark, "filter_probe.wasm")
    assert len(lines) == 1 and "output-filter" in lines[0] and "WasmMemoryLimit is 33554432" in lines[0], lines
    assert server.get("/upper/file.txt")[0] == 200


def test_input_filter_feeds_a_wit_handler(server):
    """A WIT handler's read-body reads what the input filter emitted."""
    mark = server.log_mark()
    status, _, body = server.request("POST", "/wit-api/items", body=b"some text")
    assert status == 201, body  # json-api answers a POST with 201 Created
    assert json.loads(body)["body"] == "SOME TEXT", body
    assert probe_calls(server, mark, "input")[-1][1] == "end"
