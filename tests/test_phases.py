"""The early and late phases an extension module can export (post-read-request,
quick-handler, pre-translate-name, map-to-storage, insert-filter), on a real apache2, with
httpd's meaning of each. The `phase_probe` guest logs `phase-probe <phase> uri=<URI>` for
every call, so each test checks which phases reached the guest, and in which order."""

import re

from harness import Apache, guest

P2 = "wasm32-wasip2"


def probe(words=""):
    return f'WasmApacheModule {guest("phase_probe", P2)} "{words}"'


def serve(body, files=None, extra_modules=()):
    return Apache(body, log_level="warn wasm:info", extra_modules=list(extra_modules)).add_files(files or {})


def calls(apache, mark):
    """(phase, URI) of every guest call logged since `mark`, in order."""
    return re.findall(r"phase-probe (\S+) uri=(\S*)", apache.log_since(mark))


def test_every_phase_runs_once_in_httpds_order():
    with serve(probe(), {"page.txt": "a page\n"}) as apache:
        mark = apache.log_mark()
        status, _, body = apache.get("/page.txt")
        assert (status, body) == (200, b"a page\n")
        assert apache.wait_log("phase-probe insert-filter", since=mark)
        assert calls(apache, mark) == [
            ("post-read-request", "/page.txt"),
            ("quick-handler", "/page.txt"),
            ("pre-translate-name", "/page.txt"),
            ("translate-name", "/page.txt"),
            ("map-to-storage", "/page.txt"),
            ("insert-filter", "/page.txt"),
        ]


def test_post_read_request_runs_again_for_an_internal_redirect():
    config = probe() + "\nErrorDocument 404 /missing.txt\n"
    with serve(config, {"missing.txt": "not here\n"}) as apache:
        mark = apache.log_mark()
        status, _, body = apache.get("/gone")
        assert (status, body) == (404, b"not here\n")
        assert apache.wait_log("phase-probe insert-filter uri=/missing.txt", since=mark)
        reads = [uri for phase, uri in calls(apache, mark) if phase == "post-read-request"]
        assert reads == ["/gone", "/missing.txt"]


def test_a_module_in_a_section_runs_only_where_httpd_has_applied_sections():
    # post-read-request, quick-handler and map-to-storage run before (or without) the
    # request's sections: only modules of the server or virtual host take part.
    config = f"<Location /inner>\n    {probe()}\n</Location>\n"
    with serve(config, {"inner/page.txt": "inner\n"}) as apache:
        mark = apache.log_mark()
        assert apache.get("/inner/page.txt")[:1] == (200,)
        assert apache.wait_log("phase-probe insert-filter", since=mark)
        assert [phase for phase, _ in calls(apache, mark)] == ["pre-translate-name", "translate-name", "insert-filter"]


def test_quick_handler_serves_before_mapping_and_auth():
    # As mod_cache: a quick handler answers before any section's configuration, so the
    # Location's Require does not stop it (and nothing else runs for the request).
    config = probe("quick") + "\n<Location /quick>\n    Require all denied\n</Location>\n"
    with serve(config) as apache:
        mark = apache.log_mark()
        status, headers, body = apache.get("/quick/page")
        assert (status, body) == (200, b"quick: /quick/page\n")
        assert headers["content-type"] == "text/plain"
        assert apache.wait_log("phase-probe quick-handler uri=/quick/page", since=mark)
        assert [phase for phase, _ in calls(apache, mark)] == ["post-read-request", "quick-handler"]
        # Declining leaves the request to httpd.
        assert apache.get("/elsewhere")[0] == 404


def test_quick_handler_leaves_subrequests_to_the_normal_phases():
    # mod_include's subrequests are not offered to the quick handler: they go through the
    # normal phases, so the Location's Require applies to the included URI.
    config = probe("quick") + """
<Location /quick/closed>
    Require all denied
</Location>
<Directory {root}/htdocs>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
"""
    page = 'open: <!--#include virtual="/quick/open.txt" -->closed: <!--#include virtual="/quick/closed" -->\n'
    files = {"page.shtml": page, "quick/open.txt": "a file\n"}
    with serve(config, files, extra_modules=["include"]) as apache:
        mark = apache.log_mark()
        status, _, body = apache.get("/page.shtml")
        assert status == 200
        assert body == b"open: a file\nclosed: [an error occurred while processing this directive]\n"
        assert apache.wait_log("phase-probe pre-translate-name uri=/quick/closed", since=mark)
        quick = [uri for phase, uri in calls(apache, mark) if phase == "quick-handler"]
        assert quick == ["/page.shtml"]
        # The same URI as a request of its own is the quick handler's.
        assert apache.get("/quick/open.txt")[2] == b"quick: /quick/open.txt\n"


def test_pre_translate_name_sees_the_uri_before_httpd_decodes_it():
    files = {"pt/a b.txt": "decoded\n", "pt/a%20b.txt": "as sent\n"}
    with serve(probe(), files) as apache:
        mark = apache.log_mark()
        assert apache.get("/pt/a%20b.txt")[2] == b"decoded\n"
        assert apache.wait_log("phase-probe insert-filter", since=mark)
        seen = dict(calls(apache, mark))
        assert seen["pre-translate-name"] == "/pt/a%20b.txt"
        assert seen["translate-name"] == "/pt/a"  # "/pt/a b.txt": the log line ends at the space


def test_done_in_pre_translate_name_keeps_the_uri_undecoded():
    files = {"pt/a b.txt": "decoded\n", "pt/a%20b.txt": "as sent\n"}
    with serve(probe("keep-escapes"), files) as apache:
        mark = apache.log_mark()
        assert apache.get("/pt/a%20b.txt")[2] == b"as sent\n"
        assert apache.wait_log("phase-probe translate-name uri=/pt/a%20b.txt", since=mark)


def map_to_storage(words):
    config = probe(words) + """
<Directory {root}/htdocs/virtual>
    Require all denied
</Directory>
<Location /virtual/>
    SetHandler phase-probe
</Location>
"""
    with serve(config, {"virtual/x": "a file\n"}) as apache:
        mark = apache.log_mark()
        status, _, body = apache.get("/virtual/x")
        assert apache.wait_log("phase-probe map-to-storage uri=/virtual/x", since=mark)
        return status, body


def test_map_to_storage_ok_skips_the_directory_sections():
    assert map_to_storage("not-storage") == (200, b"phase-probe handler uri=/virtual/x\n")


def test_map_to_storage_declined_leaves_the_directory_sections_in_force():
    assert map_to_storage("")[0] == 403


def filter_config(words):
    upper = f'WasmOutputFilter UPPER {guest("filter_probe", P2)} "upper"'
    return upper + "\n" + probe(words) + "\n<Location /virtual/>\n    SetHandler phase-probe\n</Location>\n"


def test_insert_filter_adds_a_filter_to_the_request():
    with serve(filter_config("insert=UPPER"), {"page.txt": "quiet words\n"}) as apache:
        assert apache.get("/page.txt")[2] == b"QUIET WORDS\n"
        assert apache.get("/virtual/y")[2] == b"PHASE-PROBE HANDLER URI=/VIRTUAL/Y\n"


def test_a_failed_insert_filter_fails_the_request_before_its_handler():
    with serve(filter_config("trap-insert")) as apache:
        for _ in range(2):  # the worker keeps serving
            mark = apache.log_mark()
            status, _, body = apache.get("/virtual/y")
            assert status == 500 and b"phase-probe handler" not in body
            assert apache.wait_log("insert-filter: ", since=mark)
            log = apache.log_since(mark)
            errors = [line for line in log.splitlines() if "[wasm:error]" in line]
            assert len(errors) == 1 and "phase_probe.wasm: insert-filter: " in errors[0] and "unreachable" in errors[0]
            assert "phase-probe handler" not in log


def test_a_status_from_insert_filter_is_refused_with_a_reason():
    with serve(filter_config("status-insert")) as apache:
        mark = apache.log_mark()
        assert apache.get("/virtual/y")[0] == 500
        assert apache.wait_log("returned http-status(403) in insert-filter, whose answer httpd ignores", since=mark)
        assert "phase-probe handler" not in apache.log_since(mark)


def test_a_handler_failing_after_its_body_began_is_cut_not_finished_with_an_error_page():
    with serve(filter_config("")) as apache:
        # Nothing sent yet: httpd's 500.
        assert apache.raw_get("/virtual/y?write-then-trap:10").startswith(b"HTTP/1.1 500 ")
        mark = apache.log_mark()
        received = apache.raw_get("/virtual/y?write-then-trap:100000")
        assert received.startswith(b"HTTP/1.1 200 ") and b"Transfer-Encoding: chunked" in received
        # No error page after the body, and no final chunk: the client sees a cut response.
        assert b"Internal Server Error" not in received and not received.endswith(b"0\r\n\r\n")
        assert apache.wait_log("phase_probe.wasm: handler: ", since=mark)
        assert apache.raw_get("/virtual/y")[-40:].endswith(b"phase-probe handler uri=/virtual/y\n")
