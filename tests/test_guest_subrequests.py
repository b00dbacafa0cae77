"""Subrequests and redirects a guest makes (`lookup-uri`, `lookup-file`, `include-uri`,
`internal-redirect`), on a real apache2: what httpd would serve, auth included; a subrequest's
body inside the response; a redirect whose response is the response; httpd's recursion limit.
The `phase_probe` handler runs one operation per request from its query string."""


import gzip

import pytest

from harness import Apache, guest

P2 = "wasm32-wasip2"

CONFIG = f"""WasmApacheModule {guest('phase_probe', P2)}
<Location /probe>
    SetHandler phase-probe
</Location>
<Location /closed>
    Require all denied
</Location>
<Location /app>
    SetHandler phase-probe
</Location>
<Location /get-only>
    <If "%{{REQUEST_METHOD}} == 'POST'">
        Require all denied
    </If>
</Location>
"""


@pytest.fixture(scope="module")
def server():
    files = {"page.txt": "a page\n", "closed/secret.txt": "secret\n", "doc.html": "<p>doc</p>\n",
             "get-only/page.txt": "read with GET\n"}
    with Apache(CONFIG, log_level="warn wasm:info").add_files(files) as apache:
        yield apache


def run(server, query):
    status, _, body = server.get(f"/probe?{query}")
    return status, body.decode()


def test_lookup_uri_tells_what_httpd_would_serve(server):
    root = server.dir / "htdocs"
    assert run(server, "lookup-uri:/page.txt") == (
        200, f"status=200 filename={root}/page.txt exists=true type=text/plain handler=-\n")
    assert run(server, "lookup-uri:/doc.html")[1].endswith("type=text/html handler=-\n")
    # A missing file maps all the same; httpd would answer 404 only when serving it.
    assert run(server, "lookup-uri:/nothing.txt")[1] == f"status=200 filename={root}/nothing.txt exists=false type=text/plain handler=-\n"
    # The handler a section sets.
    assert run(server, "lookup-uri:/app/x")[1].endswith("handler=phase-probe\n")


def test_lookup_uri_runs_the_auth_phases(server):
    assert run(server, "lookup-uri:/closed/secret.txt")[1].startswith("status=403 ")


def test_lookup_file_absolute_or_relative_to_the_requests_file(server):
    root = server.dir / "htdocs"
    assert run(server, f"lookup-file:{root}/page.txt")[1].startswith(f"status=200 filename={root}/page.txt exists=true")
    # /probe maps to {root}/probe: a relative path is taken from {root}.
    assert run(server, "lookup-file:doc.html")[1].startswith(f"status=200 filename={root}/doc.html exists=true")


def test_lookup_file_before_the_request_is_mapped_is_refused():
    # In quick-handler the request has no file yet; httpd would take a NULL file's directory.
    config = f'WasmApacheModule {guest("phase_probe", P2)} "quick"\n'
    with Apache(config) as apache:
        status, _, body = apache.get("/quick/lookup-file")
        assert status == 200 and body.startswith(b'Err(Error::WrongPhase("lookup-file needs the request mapped to a file'), body
        assert apache.get("/quick/lookup-file")[0] == 200  # the worker goes on


def test_a_lookup_target_must_be_a_local_uri(server):
    assert run(server, "lookup-uri:http://elsewhere/")[1].startswith(
        'error=Error::InvalidValue("`http://elsewhere/` is not a local URI')


def test_include_uri_puts_a_subrequests_body_into_the_response(server):
    assert run(server, "include:/page.txt") == (200, "before|a page\n|after status=200\n")
    # Refused: nothing included, the status says why.
    assert run(server, "include:/closed/secret.txt") == (200, "before||after status=403\n")


def test_include_uri_nests(server):
    # The included URI is this handler again, including a page in turn: the inner
    # subrequest's end must not end the outer one's response.
    assert run(server, "include:/probe?include:/page.txt") == (
        200, "before|before|a page\n|after status=200\n|after status=200\n")


def test_internal_redirect_hands_the_request_over(server):
    mark = server.log_mark()
    assert server.get("/probe?redirect:/page.txt")[:3:2] == (200, b"a page\n")
    # The redirect is a request of its own: it starts again at post-read-request.
    assert server.wait_log("phase-probe post-read-request uri=/page.txt", since=mark)
    # The redirected request meets its own auth.
    assert server.get("/probe?redirect:/closed/secret.txt")[0] == 403


def test_a_redirect_is_a_get_without_the_body(server):
    # As for a CGI Location: the redirected request is a GET (a POST is refused there).
    assert server.request("POST", "/get-only/page.txt", body=b"x")[0] == 403
    status, _, body = server.request("POST", "/probe?redirect:/get-only/page.txt", body=b"x" * 100)
    assert (status, body) == (200, b"read with GET\n")


def test_a_status_after_a_redirect_sends_no_second_response(server):
    received = server.raw_get("/probe?redirect-then-status:/page.txt")
    assert received.count(b"HTTP/1.1 ") == 1 and received.startswith(b"HTTP/1.1 200 "), received
    assert received.endswith(b"\r\n\r\na page\n"), received


def test_a_redirect_after_writing_is_refused(server):
    assert run(server, "write-then-redirect:/page.txt") == (
        200, 'written|error=Error::WrongPhase("part of the response has been written already")\n')


@pytest.mark.parametrize("size", [100, 20000])
def test_a_redirect_after_an_earlier_module_wrote_is_refused(size):
    # One module's handler writes and declines; the next one (a second line of the same
    # file) may not redirect: the response has begun. mod_deflate holds what was written,
    # so nothing has reached the client yet, whether it fits in one 8 KiB buffer or not.
    config = CONFIG + f"""LoadModule deflate_module /usr/lib/apache2/modules/mod_deflate.so
<Location /written>
    SetHandler phase-probe
    SetOutputFilter DEFLATE
    WasmApacheModule {guest('phase_probe', P2)} "second"
</Location>
"""
    with Apache(config, log_level="warn wasm:info").add_files({"page.txt": "a page\n"}) as server:
        mark = server.log_mark()
        status, headers, body = server.get(f"/written?write-then-decline:{size}", headers={"Accept-Encoding": "gzip"})
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        assert server.wait_log("phase-probe handler uri=/written", since=mark)  # the guest ran
        assert (status, body) == (
            200, b"x" * size + b'|error=Error::WrongPhase("part of the response has been written already")\n')


def test_a_redirect_loop_ends_at_httpds_recursion_limit(server):
    mark = server.log_mark()
    status, _, _ = server.get("/probe?redirect-self")
    assert status == 500
    assert server.wait_log("Request exceeded the limit of 10 internal redirects", since=mark)
    assert server.get("/page.txt")[0] == 200  # the worker goes on
