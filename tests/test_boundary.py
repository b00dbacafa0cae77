"""The boundary between httpd and guests, on a real apache2: hook answers are checked, a
kept instance learns that its request ended, the pool is bounded, directives read like
httpd's, and the production module holds no test-only code."""

import os
import subprocess

import pytest

from harness import Apache, BUILD, guest

P2 = "wasm32-wasip2"
PROBE = guest("ext_probe", P2)

CONFIG = f"""
<Location /answers>
    WasmApacheModule {PROBE} "bad-answers"
</Location>
<Location /ends>
    SetHandler ext-probe
    WasmApacheModuleScope server 2
    WasmApacheModule {PROBE} "say-end"
</Location>
"""


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG)
    (apache.dir / "htdocs" / "answers").mkdir()
    (apache.dir / "htdocs" / "answers" / "fine.txt").write_text("fine\n")
    os.chmod(apache.dir / "htdocs" / "answers", 0o755)
    with apache:
        yield apache


@pytest.mark.parametrize("last, said", [
    ("status-0", "returned http-status(0): a hook's status must be a redirection or an error (300-599)"),
    ("status-200", "returned http-status(200)"),
    ("status-600", "returned http-status(600)"),
    ("done", "returned done, which means \"the response is complete\""),
])
def test_answers_without_meaning_fail_the_request_with_one_line(server, last, said):
    mark = server.log_mark()
    status, _, body = server.get(f"/answers/{last}")
    assert status == 500 and b"fine" not in body
    assert server.wait_log(f"ext_probe.wasm: access-checker: {said}", since=mark)
    lines = [l for l in server.log_since(mark).splitlines() if "ext_probe.wasm" in l]
    assert len(lines) == 1, lines
    # A meaningful answer still works, and so does declining.
    assert server.get("/answers/status-403")[0] == 403
    assert server.get("/answers/fine.txt")[:1] == (200,)


def test_a_kept_instance_drops_the_request_state_when_the_request_ends(server):
    mark = server.log_mark()
    status, _, body = server.get("/ends")
    assert status == 200 and body.startswith(b"user= ")
    # Said at the end of this request, with no later request to trigger it.
    assert server.wait_log("ext_probe.wasm: request-end: ext-probe: dropped the state of request", since=mark)


def test_scope_maximum_and_timeout_syntax_are_checked():
    for directive, reason in [("WasmApacheModuleScope server 0", "is not a number of instances"),
                              ("WasmApacheModuleScope server lots", "is not a number of instances"),
                              ("WasmApacheModuleScope request 4", "request takes no maximum"),
                              ("WasmTimeout 2x", "use ms, s, mi or h")]:
        code, out = Apache(f"<Location /x>\n    {directive}\n</Location>\n").check_config()
        assert code != 0 and "Syntax error on line" in out and reason in out, out
    # httpd's own Timeout syntax is accepted.
    for value in ["1mi", "2h", "500ms", "30"]:
        code, out = Apache(f"<Location /x>\n    WasmTimeout {value}\n</Location>\n").check_config()
        assert code == 0, out


def test_production_module_has_no_test_only_code():
    lib = BUILD.parent / "target" / "release" / "libmod_wasm.a"
    assert lib.exists(), lib
    symbols = subprocess.run(["nm", "-C", "--defined-only", str(lib)], capture_output=True, text=True).stdout
    assert "wasm_register_hook_failed_filter" in symbols  # nm read the library
    for test_only in ["host::testing::", "host::exchange::fuzzing::"]:
        assert test_only not in symbols, test_only
