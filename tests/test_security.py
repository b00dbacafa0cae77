"""Hostile guests and limits (docs/security.md lists the expected outcome of each): a bad
guest fails its own request with one log line, and the worker goes on serving."""

import http.client
import os
import subprocess

import pytest

from harness import APACHE2, Apache, guest

LIMITS = "WasmTimeout 2s\n    WasmMemoryLimit 64M"


def cgi_location(path, target):
    return f"""
<Location {path}>
    SetHandler wasm-handler
    WasmModule {guest('probe', target)}
    WasmEnableCGI On
    WasmMapDir /data {{root}}/data
    {LIMITS}
</Location>"""


CONFIG = (cgi_location("/p1", "wasm32-wasip1") + cgi_location("/p2", "wasm32-wasip2") + f"""
<Location /plain>
    SetHandler wasm-handler
    WasmModule {guest('probe')}
    WasmArg args
    WasmEnv GRANTED yes
</Location>
<Location /hook-spin>
    WasmApacheModule {guest('ext_probe', 'wasm32-wasip2')} "spin-fixups"
    WasmTimeout 1s
</Location>
""")


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG)
    data = apache.dir / "data"
    data.mkdir()
    (data / "ok.txt").write_text("fine\n")
    (data / "out").symlink_to("/etc/passwd")
    (apache.dir / "htdocs" / "hook-spin").mkdir()
    (apache.dir / "htdocs" / "hook-spin" / "x.txt").write_text("x\n")
    for p in [data, apache.dir / "htdocs" / "hook-spin"]:
        os.chmod(p, 0o755)
    # A secret in httpd's own environment must not reach guests.
    os.environ["MOD_WASM_TEST_SECRET"] = "hunter2"
    try:
        with apache:
            yield apache
    finally:
        del os.environ["MOD_WASM_TEST_SECRET"]


@pytest.fixture
def healthy_after(server):
    """After the test: same children, no crash, normal requests still served."""
    children = set(server.children())
    yield
    assert server.get("/p1?do=status&v=200")[0] == 200
    assert set(server.children()) == children, "a child died"
    assert "exit signal" not in server.error_log()


TARGETS = ["/p1", "/p2"]


@pytest.mark.parametrize("base", TARGETS)
def test_infinite_loop_stops_at_the_deadline(server, healthy_after, base):
    mark = server.log_mark()
    status, _, _ = server.get(f"{base}?do=loop", timeout=30)
    assert status == 503
    assert server.wait_log("probe.wasm: stopped at its deadline (WasmTimeout 2s)", since=mark)


@pytest.mark.parametrize("base", TARGETS)
def test_sleep_past_the_deadline(server, healthy_after, base):
    status, _, _ = server.get(f"{base}?do=sleep&n=60", timeout=30)
    assert status == 503


@pytest.mark.parametrize("base", TARGETS)
def test_stack_overflow(server, healthy_after, base):
    mark = server.log_mark()
    assert server.get(f"{base}?do=stack-overflow")[0] == 500
    assert server.wait_log("call stack exhausted", since=mark)


@pytest.mark.parametrize("base", TARGETS)
def test_memory_bomb(server, healthy_after, base):
    mark = server.log_mark()
    assert server.get(f"{base}?do=memory-bomb")[0] == 500
    assert server.wait_log("memory limit exceeded", since=mark)
    assert server.wait_log("WasmMemoryLimit is 67108864", since=mark)


@pytest.mark.parametrize("base", TARGETS)
def test_endless_stdout_is_cut_at_the_deadline(server, healthy_after, base):
    mark = server.log_mark()
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    c.request("GET", f"{base}?do=endless-stdout")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises(http.client.IncompleteRead):
        r.read()  # the body ends without its final chunk: truncated, visibly
    c.close()
    assert server.wait_log("stopped at its deadline (WasmTimeout 2s) after", since=mark)


@pytest.mark.parametrize("path, outcome", [
    ("/data/ok.txt", "read 5 bytes"),
    ("/data/../httpd.conf", "refused"),
    ("/etc/passwd", "refused"),
    ("/data/out", "refused"),  # a symlink in a mapped directory pointing out of it
    ("/proc/self/environ", "refused"),
])
def test_files_outside_the_preopens_are_unreachable(server, path, outcome):
    for base in TARGETS:
        status, _, body = server.get(f"{base}?do=open&v={path}")
        assert status == 200 and body.decode().startswith(outcome), (base, path, body)


def test_environment_holds_only_what_was_granted(server):
    body = server.get("/plain")[2].decode()
    assert [l for l in body.splitlines() if l.startswith("env:")] == ["env:GRANTED=yes"]
    for base in TARGETS:
        assert "hunter2" not in server.get(f"{base}?do=args")[2].decode()


@pytest.mark.parametrize("base", TARGETS)
def test_one_megabyte_cgi_header_block(server, healthy_after, base):
    mark = server.log_mark()
    assert server.get(f"{base}?do=big-header&n=1048576")[0] == 500
    assert server.wait_log("CGI header block larger than 65536 bytes", since=mark)


@pytest.mark.parametrize("base", TARGETS)
def test_header_name_that_is_not_utf8(server, healthy_after, base):
    status, headers, _ = server.get(f"{base}?do=bad-header-name")
    assert status == 500
    assert not any(k.startswith("x-") and "name" in k for k in headers)


def test_spinning_hook_stops_at_the_deadline(server, healthy_after):
    mark = server.log_mark()
    assert server.get("/hook-spin/x.txt", timeout=30)[0] == 503
    assert server.wait_log("ext_probe.wasm: fixups: stopped at its deadline (WasmTimeout 1s)", since=mark)


def test_config_errors_for_limits(tmp_path):
    for directive, reason in [("WasmTimeout 10parsecs", "unknown unit"), ("WasmTimeout 0", "out of range"),
                              ("WasmMemoryLimit 12X", "unknown unit"), ("WasmMemoryLimit 8G", "out of range"),
                              ("WasmApacheModuleScope thread", "is not a scope: use request or server")]:
        apache = Apache(f"<Location /x>\n    {directive}\n</Location>\n")
        code, out = apache.check_config()
        assert code != 0 and f"Syntax error on line" in out and reason in out, out


def test_contradictory_settings_are_refused():
    for first, second in [(f"WasmModule {guest('hello')}", f"WasmModule {guest('probe')}"),
                          ("WasmTimeout 1s", "WasmTimeout 2s"), ("WasmEnableCGI On", "WasmEnableCGI Off"),
                          ("WasmApacheModuleScope server", "WasmApacheModuleScope request")]:
        apache = Apache(f"<Location /x>\n    {first}\n    {second}\n</Location>\n")
        code, out = apache.check_config()
        assert code != 0 and "is already set in this section" in out, out


def test_address_space_limit_stops_startup_with_a_clear_error():
    apache = Apache(f"<Location /x>\n    SetHandler wasm-handler\n    WasmModule {guest('hello')}\n</Location>\n")
    p = subprocess.run(["bash", "-c", f"ulimit -v 4000000; exec {APACHE2} -f {apache.conf} -k start"],
                       capture_output=True, text=True)
    assert p.returncode != 0
    log = apache.error_log()
    assert "[wasm:emerg]" in log and "cannot create the WebAssembly engine for 8 concurrent requests" in log
    assert "raise the address-space limit (ulimit -v) or lower ThreadsPerChild" in log
    assert "AH00016: Configuration Failed" in log


def test_directives_are_refused_in_htaccess():
    apache = Apache("<Directory {root}/htdocs>\n    AllowOverride All\n</Directory>\n")
    (apache.dir / "htdocs" / "app").mkdir()
    (apache.dir / "htdocs" / "app" / ".htaccess").write_text(f"WasmModule {guest('hello')}\n")
    os.chmod(apache.dir / "htdocs" / "app", 0o755)
    with apache:
        mark = apache.log_mark()
        assert apache.get("/app/")[0] == 500
        assert apache.wait_log("WasmModule not allowed here", since=mark)
