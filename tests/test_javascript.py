"""An extension module written in JavaScript (sdk-examples/js/access-control, built with
componentize-js by `make js-guests`), against a real apache2."""

import pytest

from harness import Apache, guest, section

MODULE = guest("js_access_control", "wasm32-wasip2")


@pytest.fixture(scope="module")
def server():
    apache = Apache(section("/private", f'WasmApacheModule {MODULE} "allow 10.0.0.0/8"')
                    + section("/token", f'WasmApacheModule {MODULE} "allow 127.0.0.0/8; token s3cret"')
                    + section("/open", f'WasmApacheModule {MODULE} "allow 10.0.0.1 127.0.0.1"'),
                    log_level="warn wasm:info")
    apache.add_files({f"{d}/hello.txt": "hello\n" for d in ["private", "token", "open"]})
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
