"""Extension modules written in Python with sdk-python (componentize-py), against a real
apache2: the examples in sdk-examples/python, built by `make python-guests`. The SDK itself is
tested with a probe in test_sdk_probe.py; the access-control example with its JavaScript twin
in test_access_control_languages.py."""

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
])


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG, log_level="warn wasm:info")
    apache.add_files({f"{d}/hello.txt": "hello\n" for d in ["headers", "logged"]})
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
