"""The SDKs for Python (sdk-python) and JavaScript (sdk-js), each through a probe module
(tests/guests/python-probe, tests/guests/js-probe) that is a hook, a handler, an output
filter and an authorization provider, against a real apache2: the same configuration gives
the same answers in both languages."""

import pytest

from harness import Apache, guest, section

P2 = "wasm32-wasip2"
PROBES = {"python": "python_probe", "javascript": "js_probe"}
# How each language words a return value it cannot use.
NOTHING = {"python": "None", "javascript": "undefined"}


@pytest.fixture(scope="module", params=sorted(PROBES))
def server(request):
    probe = guest(PROBES[request.param], P2)

    def module(config=None):
        return f"WasmApacheModule {probe}" + (f' "{config}"' if config else "")

    apache = Apache("".join([
        section("/probe", module()),
        section("/probe-kept", module(), "WasmApacheModuleScope server 1"),
        section("/raise", module("raise")),
        section("/none", module("none")),
        section("/status-200", module("status-200")),
        section("/handler", module(), "SetHandler probe"),
        f"WasmOutputFilter UPPER {probe}\n",
        section("/upper", "SetOutputFilter UPPER"),
        f'WasmOutputFilter SAME {probe} "same"\n',
        section("/same", "SetOutputFilter SAME"),
        f"WasmAuthzProvider header-pass {probe}\n",
        section("/authz", "Require header-pass header-pass"),
    ]), log_level="warn wasm:info")
    apache.add_files({f"{d}/hello.txt": "hello\n"
                      for d in ["probe", "probe-kept", "raise", "none", "status-200", "upper", "same", "authz"]})
    apache.language = request.param
    with apache:
        yield apache


def test_the_module_object_lives_for_one_request_across_its_phases(server):
    mark = server.log_mark()
    status, headers, _ = server.request("GET", "/probe/hello.txt", headers={"X-Probe": "p1"})
    assert status == 200
    assert server.wait_log("probe fixups for /probe/hello.txt", since=mark)  # print() is logged
    assert headers["x-seen-in-header-parser"] == "/probe/hello.txt"
    assert headers["x-request-header"] == "p1"
    assert headers["x-fixups-calls"] == "1"
    # Request scope: a new instance per request, so module-level state starts again too.
    assert headers["x-instance-served"] == "1"


def test_server_scope_keeps_the_instance_but_not_the_module_object(server):
    served = []
    for _ in range(3):
        status, headers, _ = server.get("/probe-kept/hello.txt")
        assert status == 200 and headers["x-fixups-calls"] == "1"
        served.append(int(headers["x-instance-served"]))
    # One instance per child is kept ("server 1"); with several children, each counts its own.
    assert max(served) >= 2


def test_a_value_httpd_would_refuse_raises_invalid_value(server):
    status, headers, _ = server.get("/probe/hello.txt")
    assert status == 200
    assert headers["x-refused"] == "InvalidValue"
    assert "x-bad" not in headers and "x-injected" not in headers


def test_an_exception_fails_one_request_with_its_traceback_in_the_log(server):
    mark = server.log_mark()
    status, _, _ = server.get("/raise/hello.txt")
    assert status == 500
    assert server.wait_log("probe fails on purpose", since=mark)
    status, _, body = server.get("/probe/hello.txt")
    assert (status, body) == (200, b"hello\n")


def test_returning_nothing_is_a_clear_error(server):
    mark = server.log_mark()
    status, _, _ = server.get("/none/hello.txt")
    assert status == 500
    assert server.wait_log(f"fixups returned {NOTHING[server.language]}: return OK, DECLINED, DONE or an HTTP status",
                           since=mark)


def test_a_status_no_hook_may_answer_is_a_clear_error(server):
    mark = server.log_mark()
    status, _, _ = server.get("/status-200/hello.txt")
    assert status == 500
    assert server.wait_log("fixups returned status 200: an answer's status must be 300-599", since=mark)


def test_a_handler_reads_the_body_and_writes_the_response(server):
    status, headers, body = server.request("POST", "/handler?q=7&x=1", body=b"x" * 70000 + b"end")
    assert status == 200 and headers["content-type"] == "text/plain"
    assert body == b"probe handler read 70003 bytes, q=7\n" + b"x" * 16 + b"\n"


def test_an_output_filter_changes_the_body(server):
    status, _, body = server.get("/upper/hello.txt")
    assert (status, body) == (200, b"HELLO\n")


def test_an_output_filter_may_pass_on_the_bytes_it_was_given(server):
    status, headers, body = server.get("/same/hello.txt")
    assert (status, headers.get("x-filtered"), body) == (200, "same", b"hello\n")


def test_an_authz_provider_decides(server):
    assert server.get("/authz/hello.txt")[0] == 403
    status, _, body = server.request("GET", "/authz/hello.txt", headers={"X-Pass": "yes"})
    assert (status, body) == (200, b"hello\n")
