"""Extension modules written in Python with sdk-python (componentize-py), against a real
apache2: the examples in sdk-examples/python and tests/guests/python-probe, built by
`make python-guests`. The access-control example is tested with its JavaScript twin in
test_access_control_languages.py."""

import json

import pytest

from harness import Apache, guest, section

P2 = "wasm32-wasip2"


def module(name, config=None):
    line = f"WasmApacheModule {guest(name, P2)}"
    return line + (f' "{config}"' if config else "")


CONFIG = "".join([
    section("/headers", module("python_add_headers", "set X-Frame-Options DENY; append Cache-Control no-store; "
                                                     "add X-Twice one; add X-Twice two")),
    section("/logged", module("python_json_logger")),
    section("/probe", module("python_probe")),
    section("/probe-kept", module("python_probe"), "WasmApacheModuleScope server 1"),
    section("/raise", module("python_probe", "raise")),
    section("/none", module("python_probe", "none")),
    section("/status-200", module("python_probe", "status-200")),
    section("/handler", module("python_probe"), "SetHandler python-probe"),
    f"WasmOutputFilter PYUPPER {guest('python_probe', P2)}\n",
    section("/upper", "SetOutputFilter PYUPPER"),
    f"WasmAuthzProvider pypass {guest('python_probe', P2)}\n",
    section("/authz", "Require pypass header-pass"),
])


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG, log_level="warn wasm:info")
    files = {f"{d}/hello.txt": "hello\n" for d in ["headers", "logged",
                                                    "probe", "probe-kept", "raise", "none", "status-200", "upper",
                                                    "authz"]}
    apache.add_files(files)
    with apache:
        yield apache


def test_add_headers_edits_response_headers(server):
    status, headers, _ = server.get("/headers/hello.txt")
    assert status == 200
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    head = server.raw_get("/headers/hello.txt").split(b"\r\n\r\n")[0].split(b"\r\n")
    assert [line for line in head if line.startswith(b"X-Twice:")] == [b"X-Twice: one", b"X-Twice: two"]


def test_add_headers_reaches_error_responses(server):
    status, headers, _ = server.get("/headers/missing.txt")
    assert status == 404 and headers["x-frame-options"] == "DENY"


def test_json_logger_writes_one_object_per_request(server):
    mark = server.log_mark()
    server.request("GET", "/logged/hello.txt?a=1&b=%22", headers={"User-Agent": 'quote " agent'})
    assert server.wait_log("access: {", since=mark)
    line = next(l for l in server.log_since(mark).splitlines() if "access: {" in l)
    # The error log escapes a backslash as two (ap_escape_errorlog_item).
    entry = json.loads(line.split("access: ", 1)[1].replace("\\\\", "\\"))
    assert entry == {"client": "127.0.0.1", "method": "GET", "uri": "/logged/hello.txt", "query": "a=1&b=%22",
                     "status": 200, "user_agent": 'quote " agent', "content_type": "text/plain"}


def test_the_module_object_lives_for_one_request_across_its_phases(server):
    mark = server.log_mark()
    status, headers, _ = server.request("GET", "/probe/hello.txt", headers={"X-Probe": "p1"})
    assert status == 200
    assert server.wait_log("python-probe fixups for /probe/hello.txt", since=mark)  # print() is logged
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
    assert server.wait_log("RuntimeError: python-probe fails on purpose", since=mark)
    status, _, body = server.get("/probe/hello.txt")
    assert (status, body) == (200, b"hello\n")


def test_returning_none_is_a_clear_error(server):
    mark = server.log_mark()
    status, _, _ = server.get("/none/hello.txt")
    assert status == 500
    assert server.wait_log("fixups returned None: return OK, DECLINED, DONE or an HTTP status", since=mark)


def test_a_status_no_hook_may_answer_is_a_clear_error(server):
    mark = server.log_mark()
    status, _, _ = server.get("/status-200/hello.txt")
    assert status == 500
    assert server.wait_log("fixups returned status 200: an answer's status must be 300-599", since=mark)


def test_a_python_handler_reads_the_body_and_writes_the_response(server):
    status, headers, body = server.request("POST", "/handler?q=7&x=1", body=b"x" * 70000 + b"end")
    assert status == 200 and headers["content-type"] == "text/plain"
    assert body == b"python-probe handler read 70003 bytes, q=7\n" + b"x" * 16 + b"\n"


def test_a_python_output_filter_changes_the_body(server):
    status, _, body = server.get("/upper/hello.txt")
    assert (status, body) == (200, b"HELLO\n")


def test_a_python_authz_provider_decides(server):
    assert server.get("/authz/hello.txt")[0] == 403
    status, _, body = server.request("GET", "/authz/hello.txt", headers={"X-Pass": "yes"})
    assert (status, body) == (200, b"hello\n")
