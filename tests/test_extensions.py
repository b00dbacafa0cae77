"""Extension modules (`WasmApacheModule`) in httpd's request phases, on a real apache2."""

import concurrent.futures
import json
import http.client
import os
import re
import shutil

import pytest

from harness import Apache, guest

P2 = "wasm32-wasip2"


def ext(name):
    return guest(name, P2)


CONFIG = f"""
# Server-wide: a JSON access log, a request id, the mod_lua conformance module.
WasmApacheModule {ext('json_logger')}
WasmApacheModule {ext('request_id')}
WasmApacheModule {ext('conformance')}
WasmApacheModule {ext('rewrite')} "rewrite /old/ /new/; redirect /moved/ https://example.org/"

<Location /hello>
    SetHandler wasm-hello
</Location>
<Location /201>
    SetHandler wasm-201
</Location>
<Location /method>
    SetHandler wasm-method
</Location>
<Location /setheaders>
    SetHandler wasm-setheaders
</Location>
<Location /setheaderfromparam>
    SetHandler wasm-setheaderfromparam
</Location>

<Location /headers>
    WasmApacheModule {ext('add_headers')} "set X-Frame-Options DENY; append Cache-Control no-store; add X-Multi a; add X-Multi b"
</Location>
<Location /wasm-program>
    SetHandler wasm-handler
    WasmModule {guest('hello')}
    WasmApacheModule {ext('add_headers')} "set X-From-Extension yes"
</Location>

<Location /admin>
    WasmApacheModule {ext('access_control')} "allow 127.0.0.1; token s3cret"
</Location>
<Location /intranet>
    WasmApacheModule {ext('access_control')} "allow 10.0.0.0/8"
</Location>

<Location /api>
    SetHandler json-api
    WasmApacheModule {ext('json_api')}
</Location>

<Location /order>
    WasmApacheModule {ext('add_headers')} "append X-Order first"
    WasmApacheModule {{root}}/add_headers_copy.wasm "append X-Order second"
</Location>
<Location /order/nested>
    WasmApacheModule {ext('add_headers')} "append X-Order third"
</Location>

<Location /probe>
    SetHandler ext-probe
    WasmApacheModule {ext('ext_probe')} "read-body"
</Location>
<Location /probe-server>
    SetHandler ext-probe
    WasmApacheModuleScope server
    WasmApacheModule {ext('ext_probe')} "read-body trap-if-asked"
</Location>
<Location /panic>
    WasmApacheModule {ext('ext_probe')} "panic-fixups"
</Location>
<Location /trap>
    WasmApacheModule {ext('ext_probe')} "trap-access"
</Location>
<Location /crlf>
    WasmApacheModule {ext('ext_probe')} "crlf wrong-phase"
</Location>
<Location /private>
    SetHandler ext-probe
    AuthType XUser
    AuthName private
    Require valid-user
    WasmApacheModule {ext('ext_probe')} "authn"
</Location>
"""


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG, extra_modules=["authn_core", "authz_user"])
    htdocs = apache.dir / "htdocs"
    for rel, text in {"static.txt": "static\n", "headers/index.txt": "h\n", "admin/index.txt": "admin\n",
                      "intranet/index.txt": "intranet\n", "new/page.txt": "the new page\n",
                      "order/x.txt": "x\n", "order/nested/y.txt": "y\n", "panic/p.txt": "p\n",
                      "trap/t.txt": "t\n", "crlf/c.txt": "c\n"}.items():
        (htdocs / rel).parent.mkdir(parents=True, exist_ok=True)
        (htdocs / rel).write_text(text)
    shutil.copy(ext("add_headers"), apache.dir / "add_headers_copy.wasm")
    for p in [apache.dir, *apache.dir.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    with apache:
        yield apache


# -- mod_lua conformance -------------------------------------------------------------------

def test_hello_handler(server):
    status, headers, body = server.get("/hello")
    assert status == 200 and body == b"Hello Wasm World!\n"
    assert headers["content-type"] == "text/plain"


def test_handler_response_keeps_its_length_and_pipelining_keeps_order(server):
    answers = server.pipelined_get(["/hello", "/method", "/hello"])
    assert [(a[0], a[2]) for a in answers] == [(200, b"Hello Wasm World!\n"), (200, b"GET"),
                                                (200, b"Hello Wasm World!\n")]
    for _, headers, body in answers:
        assert headers["content-length"] == str(len(body)) and "transfer-encoding" not in headers


def test_201_with_empty_body(server):
    status, _, body = server.get("/201")
    assert status == 201 and body == b""


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_method_echoed(server, method):
    assert server.request(method, "/method", body=b"" if method != "GET" else None)[2] == method.encode()


def test_set_headers_and_copy_host(server):
    status, headers, _ = server.get("/setheaders", headers={"Host": "example.test"})
    assert status == 200 and headers["x-header"] == "yes" and headers["x-host"] == "example.test"


def test_header_named_and_valued_from_query(server):
    _, headers, _ = server.get("/setheaderfromparam?HeaderName=X-Custom&HeaderValue=conformant")
    assert headers["x-custom"] == "conformant"


def test_translate_name_rewrites_to_the_hello_handler(server):
    status, _, body = server.get("/404?translateme=1")
    assert status == 200 and body == b"Hello Wasm World!\n"
    assert server.get("/404")[0] == 404


# -- examples ------------------------------------------------------------------------------

def test_add_headers_on_static_files_and_errors(server):
    status, headers, _ = server.get("/headers/index.txt")
    assert status == 200
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
    assert server.get("/headers/missing")[1]["x-frame-options"] == "DENY"


def test_add_headers_repeated_header_lines(server):
    c = __import__("http.client").client.HTTPConnection("127.0.0.1", server.port)
    c.request("GET", "/headers/index.txt")
    r = c.getresponse()
    assert r.headers.get_all("X-Multi") == ["a", "b"]
    c.close()


def test_extension_with_a_wasm_content_handler(server):
    status, headers, body = server.get("/wasm-program")
    assert body == b"Hello from WebAssembly!\n" and headers["x-from-extension"] == "yes"


def test_module_in_a_location_runs_only_there(server):
    assert "x-frame-options" not in server.get("/static.txt")[1]


def test_access_control_token(server):
    status, headers, _ = server.get("/admin/index.txt")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="mod_wasm"'
    assert server.get("/admin/index.txt", headers={"Authorization": "Bearer wrong"})[0] == 401
    status, _, body = server.get("/admin/index.txt", headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and body == b"admin\n"


def test_access_control_ip_allow_list(server):
    assert server.get("/intranet/index.txt")[0] == 403


def test_rewrite_and_redirect(server):
    status, _, body = server.get("/old/page.txt")
    assert status == 200 and body == b"the new page\n"
    status, headers, _ = server.get("/moved/a/b?x=1")
    assert status == 301 and headers["location"] == "https://example.org/a/b?x=1"


def test_json_api(server):
    status, headers, body = server.get("/api/items/7?a=1&b=two")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"method": "GET", "path": "/items/7", "params": {"a": "1", "b": "two"},
                                "body_length": 0, "body": ""}
    status, _, body = server.request("POST", "/api/items", body=b'{"name": "x"}')
    assert status == 201 and json.loads(body)["body"] == '{"name": "x"}'
    status, headers, body = server.request("DELETE", "/api/items/7")
    assert status == 405 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": "method not allowed"}


def test_json_access_log(server):
    server.get("/static.txt?q=1", headers={"User-Agent": "pytest-agent"})
    assert server.wait_log('"uri":"/static.txt","query":"q=1","status":200,"user_agent":"pytest-agent"')
    line = next(l for l in server.error_log().splitlines() if '"user_agent":"pytest-agent"' in l)
    entry = json.loads(line.split("access: ", 1)[1])
    assert entry["client"] == "127.0.0.1" and entry["method"] == "GET"


def test_request_id_kept_across_phases(server):
    status, headers, _ = server.get("/static.txt", headers={"X-Request-Id": "given-id-42"})
    assert status == 200 and headers["x-request-id"] == "given-id-42"
    assert server.wait_log("request-id given-id-42 status 200 phases 3")
    _, headers, _ = server.get("/static.txt")
    made = headers["x-request-id"]
    assert made and made != "given-id-42"
    assert server.wait_log(f"request-id {made} status 200 phases 3")


def test_modules_run_in_configuration_order(server):
    assert server.get("/order/x.txt")[1]["x-order"] == "first, second"
    assert server.get("/order/nested/y.txt")[1]["x-order"] == "first, second, third"


def test_one_instance_per_request_sees_all_phases(server):
    status, headers, body = server.request("POST", "/probe", body=b"12345")
    assert status == 200 and headers["x-instance-requests"] == "1"
    assert body == b"user= body_in_access=5 phases=access,fixups,handler\n"
    # A new request gets a new instance: no state carried over.
    status, headers, body = server.request("POST", "/probe", body=b"1")
    assert body == b"user= body_in_access=1 phases=access,fixups,handler\n"
    assert headers["x-instance-requests"] == "1"


def keep_alive_posts(server, path, bodies):
    """POSTs on one keep-alive connection; (status, headers, body) of each."""
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        answers = []
        for body in bodies:
            c.request("POST", path, body=body)
            r = c.getresponse()
            answers.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
        return answers
    finally:
        c.close()


def test_server_scope_reuses_instances_with_fresh_request_state(server):
    # 40 requests one after the other: a child lends the instance it got back to a later
    # request; the SDK still starts each request from a new value.
    answers = keep_alive_posts(server, "/probe-server", [b"x" * (i % 5) for i in range(40)])
    for i, (status, _, body) in enumerate(answers):
        assert status == 200
        assert body == f"user= body_in_access={i % 5} phases=access,fixups,handler\n".encode()
    assert max(int(h["x-instance-requests"]) for _, h, _ in answers) >= 2


def test_every_worker_busy_with_several_modules_at_once(server):
    # Five modules per request (four server-wide ones); 16 clients keep all worker threads
    # busy, so every instance's Store holds a fiber stack at the same time.
    def client(i):
        path = ["/probe", "/probe-server"][i % 2]
        return [server.request("POST", path, body=b"abc")[0] for _ in range(10)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = [s for batch in pool.map(client, range(16)) for s in batch]
    assert statuses == [200] * 160
    assert "cannot instantiate" not in server.error_log()


def test_server_scope_never_reuses_a_trapped_instance(server):
    path = "/probe-server"
    traps = lambda: server.error_log().count("wasm `unreachable` instruction executed")  # noqa: E731
    before = traps()
    status, _, _ = server.request("POST", f"{path}?trap", body=b"")
    assert status == 500 and traps() == before + 1
    answers = keep_alive_posts(server, path, [b"ab"] * 20)
    assert all(a[0] == 200 and a[2] == b"user= body_in_access=2 phases=access,fixups,handler\n" for a in answers)
    assert traps() == before + 1


def test_check_user_id(server):
    status, headers, _ = server.get("/private")
    assert status == 401 and headers["www-authenticate"] == "X-User"
    status, _, body = server.get("/private", headers={"X-User": "alice"})
    assert status == 200 and body.startswith(b"user=alice ")


def test_header_values_with_crlf_are_refused(server):
    status, headers, _ = server.get("/crlf/c.txt")
    assert status == 200
    assert headers["x-crlf"] == "invalid-value" and "x-injected" not in headers and "set-cookie" not in headers
    assert headers["x-wrong-phase"] == "wrong-phase"


@pytest.mark.parametrize("path, phase, reasons", [
    # docs/security.md: `x.wasm: fixups: wasm trap: … (guest output: panicked at …)`
    ("/panic/p.txt", "fixups", ["wasm trap: ", "(guest output: ", "panicked at", "ext-probe was told to panic"]),
    ("/trap/t.txt", "access-checker", ["wasm `unreachable` instruction executed"]),
])
def test_guest_failure_is_a_500_and_one_log_line(server, path, phase, reasons):
    children = set(server.children())
    mark = server.log_mark()
    assert server.get(path)[0] == 500
    assert server.wait_log(f"ext_probe.wasm: {phase}: ", since=mark)
    lines = [l for l in server.log_since(mark).splitlines() if "ext_probe.wasm" in l]
    assert len(lines) == 1, lines
    assert f"ext_probe.wasm: {phase}: " in lines[0]
    for reason in reasons:
        assert reason in lines[0], (reason, lines[0])
    assert server.get("/static.txt")[0] == 200
    assert set(server.children()) == children and "exit signal" not in server.error_log()


# -- configuration errors -----------------------------------------------------------------

@pytest.mark.parametrize("module, reason", [
    (lambda: guest("hello", P2), "does not target the apache:httpd world"),
    (lambda: guest("hello"), "does not target the apache:httpd world"),
    (lambda: "/nonexistent/x.wasm", "cannot read /nonexistent/x.wasm"),
])
def test_wrong_module_is_refused_at_startup(module, reason):
    apache = Apache(f"<Location /x>\n    WasmApacheModule {module()} \"cfg\"\n</Location>\n")
    code, out = apache.check_config()
    assert code != 0
    m = re.search(r"Syntax error on line (\d+) of (\S+):", out)
    assert m and m.group(2) == str(apache.conf)
    assert apache.conf.read_text().splitlines()[int(m.group(1)) - 1].strip().startswith("WasmApacheModule")
    assert "WasmApacheModule: " in out and reason in out
