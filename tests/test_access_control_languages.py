"""The access-control example as a Python module (sdk-examples/python/access-control, built
with sdk-python) and as a JavaScript one (sdk-examples/js/access-control, built with
componentize-js), against a real apache2: the same configuration gives the same answers."""

import pytest

from harness import Apache, guest, section

MODULES = {"python": "python_access_control", "javascript": "js_access_control"}


@pytest.fixture(scope="module", params=sorted(MODULES))
def server(request):
    module = guest(MODULES[request.param], "wasm32-wasip2")
    apache = Apache(section("/private", f'WasmApacheModule {module} "allow 10.0.0.0/8"')
                    + section("/token", f'WasmApacheModule {module} "allow 127.0.0.0/8; token s3cret"')
                    + section("/open", f'WasmApacheModule {module} "allow 10.0.0.1 127.0.0.1"')
                    + section("/broken", f'WasmApacheModule {module} "allow 127.0.0.0/ 127.0.0.1/x"'),
                    log_level="warn wasm:info")
    apache.add_files({f"{d}/hello.txt": "hello\n" for d in ["private", "token", "open", "broken"]})
    with apache:
        yield apache


def test_an_address_outside_the_allow_list_gets_403(server):
    mark = server.log_mark()
    status, _, _ = server.get("/private/hello.txt")
    assert status == 403
    assert server.wait_log("access-control: 127.0.0.1 is not on the allow-list", since=mark)


def test_an_address_on_the_allow_list_is_served(server):
    mark = server.log_mark()
    status, _, body = server.get("/open/hello.txt")
    assert (status, body) == (200, b"hello\n")
    assert "not on the allow-list" not in server.log_since(mark)


def test_the_token_is_asked_for_and_checked(server):
    status, headers, _ = server.get("/token/hello.txt")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="mod_wasm"'
    status, _, _ = server.request("GET", "/token/hello.txt", headers={"Authorization": "Bearer wrong"})
    assert status == 401
    status, _, body = server.request("GET", "/token/hello.txt", headers={"Authorization": "Bearer s3cret"})
    assert (status, body) == (200, b"hello\n")


def test_a_malformed_rule_matches_no_one(server):
    # "127.0.0.0/" is no network: it must not widen to /0 (everyone) nor fail the request.
    mark = server.log_mark()
    status, _, _ = server.get("/broken/hello.txt")
    assert status == 403
    assert server.wait_log("access-control: 127.0.0.1 is not on the allow-list", since=mark)
