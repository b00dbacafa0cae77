"""Authorization providers (`WasmAuthzProvider`) behind `Require`, on a real apache2: httpd's
mod_authz_core combines their answers with its own (`<RequireAll>`, `<RequireAny>`,
`Require not`), asks again once a user is known, and asks for subrequests too. The
`phase_probe` guest logs `phase-probe authz-provider uri=… user=… line=…` for every call."""

import re

import pytest

from harness import Apache, basic_users, guest, refused_at_startup, section

P2 = "wasm32-wasip2"
AUTH_MODULES = ["authn_core", "authn_file", "auth_basic", "authz_user", "include"]


CONFIG = f"""WasmAuthzProvider probe {guest("phase_probe", P2)}
WasmAuthzProvider office-hours {guest("office_hours", P2)}
""" + "".join([
    section("/granted", "Require probe granted"),
    section("/denied", "Require probe denied"),
    section("/error", "Require probe error"),
    section("/trap", "Require probe trap"),
    section("/neutral", "Require probe neutral"),
    # In <RequireAll> a neutral line is left out and a denied one decides: granted here
    # only if the provider's answer is neutral (denied would make it 403).
    section("/with-neutral", "<RequireAll>", "    Require probe neutral", "    Require all granted", "</RequireAll>"),
    section("/any", "<RequireAny>", "    Require probe denied", "    Require probe header=X-Key:yes", "</RequireAny>"),
    section("/all", "<RequireAll>", "    Require probe granted", "    Require not probe header=X-Block:yes", "</RequireAll>"),
    section("/user", "AuthType Basic", "AuthName wasm", "AuthBasicProvider file",
             "AuthUserFile {root}/users", "Require probe user"),
    section("/always", "Require office-hours 00:00-24:00"),
    section("/never", "Require office-hours 00:00-00:00"),
    section("/not-never", "<RequireAll>", "    Require all granted", "    Require not office-hours 00:00-00:00",
             "</RequireAll>"),
    section("/bad-range", "Require office-hours 9-17"),
    section("/guarded", "Require probe header=X-Key:yes"),
]) + """<Directory {root}/htdocs>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
"""

PATHS = ["granted", "denied", "error", "trap", "neutral", "with-neutral", "any", "all", "user", "always", "never",
         "not-never", "bad-range", "guarded"]


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG, log_level="warn wasm:info authz_core:error", extra_modules=AUTH_MODULES)
    apache.basic = basic_users(apache, {"alice": "secret"})
    files = {f"{path}/x.txt": f"{path}\n" for path in PATHS}
    files["page.shtml"] = 'included: <!--#include virtual="/guarded/x.txt" -->end\n'
    with apache.add_files(files):
        yield apache


def asked(server, mark):
    """(URI, user, line) of every provider call logged since `mark`."""
    return re.findall(r"phase-probe authz-provider uri=(\S+) user=(\S+) line=(.*)", server.log_since(mark))


def test_the_guests_answer_decides(server):
    mark = server.log_mark()
    assert server.get("/granted/x.txt")[:3:2] == (200, b"granted\n")
    assert server.get("/denied/x.txt")[0] == 403
    assert server.wait_log("line=denied", since=mark)
    assert ("/granted/x.txt", "-", "granted") in asked(server, mark)


def test_neutral_alone_grants_nothing_and_beside_a_grant_denies_nothing(server):
    # httpd: a Require section whose lines are all neutral denies; in <RequireAll> a neutral
    # line does not count, where a denied one would.
    mark = server.log_mark()
    assert server.get("/neutral/x.txt")[0] == 403
    assert server.get("/with-neutral/x.txt")[:3:2] == (200, b"with-neutral\n")
    assert server.wait_log("uri=/with-neutral/x.txt", since=mark)
    calls = asked(server, mark)
    assert ("/neutral/x.txt", "-", "neutral") in calls and ("/with-neutral/x.txt", "-", "neutral") in calls


def test_a_general_error_answers_500(server):
    mark = server.log_mark()
    assert server.get("/error/x.txt")[0] == 500
    assert server.wait_log("phase-probe authz-provider uri=/error/x.txt", since=mark)


def test_a_trap_answers_500_with_one_line_naming_the_module_and_the_worker_keeps_serving(server):
    for _ in range(2):
        mark = server.log_mark()
        assert server.get("/trap/x.txt")[0] == 500
        assert server.wait_log("authz-provider: ", since=mark)
        errors = [line for line in server.log_since(mark).splitlines() if "[wasm:error]" in line]
        assert len(errors) == 1, errors
        assert "phase_probe.wasm: authz-provider: " in errors[0] and "unreachable" in errors[0]
    assert server.get("/granted/x.txt")[0] == 200


def test_require_any_grants_when_one_line_does(server):
    assert server.get("/any/x.txt", headers={"X-Key": "yes"})[0] == 200
    assert server.get("/any/x.txt", headers={"X-Key": "no"})[0] == 403


def test_require_not_inside_require_all(server):
    assert server.get("/all/x.txt")[0] == 200
    assert server.get("/all/x.txt", headers={"X-Block": "yes"})[0] == 403


def test_denied_no_user_asks_for_a_user_and_the_provider_is_asked_again_with_it(server):
    mark = server.log_mark()
    status, headers, _ = server.get("/user/x.txt")
    assert status == 401 and headers["www-authenticate"] == 'Basic realm="wasm"'
    status, _, body = server.get("/user/x.txt", headers={"Authorization": server.basic["alice"]})
    assert (status, body) == (200, b"user\n")
    assert server.wait_log("user=alice line=user", since=mark)
    calls = asked(server, mark)
    assert ("/user/x.txt", "-", "user") in calls and ("/user/x.txt", "alice", "user") in calls


def test_subrequests_are_asked_too(server):
    # mod_include's subrequest carries the page's request headers; the provider decides on
    # them for the included URI.
    mark = server.log_mark()
    body = server.get("/page.shtml", headers={"X-Key": "yes"})[2]
    assert body == b"included: guarded\nend\n"
    body = server.get("/page.shtml", headers={"X-Key": "no"})[2]
    assert body == b"included: [an error occurred while processing this directive]end\n"
    assert server.wait_log("uri=/guarded/x.txt", since=mark)


def test_office_hours_example(server):
    assert server.get("/always/x.txt")[0] == 200
    assert server.get("/never/x.txt")[0] == 403
    assert server.get("/not-never/x.txt")[0] == 200
    mark = server.log_mark()
    assert server.get("/bad-range/x.txt")[0] == 500
    assert server.wait_log("office-hours: Require office-hours 9-17: `9` is not a time (HH:MM, 00:00 to 24:00)", since=mark)


# -- configuration errors ------------------------------------------------------------------

def test_a_module_without_the_export_stops_startup_with_the_reason():
    _, out = refused_at_startup(f"WasmAuthzProvider nope {guest('access_control', P2)}\n", directive="WasmAuthzProvider nope")
    assert "WasmAuthzProvider" in out and "access_control.wasm" in out
    assert "it does not export apache:httpd/authz-provider@0.1.0" in out, out


def test_a_provider_used_before_its_definition_is_httpds_error():
    config = section("/x", "Require early granted") + f"WasmAuthzProvider early {guest('phase_probe', P2)}\n"
    _, out = refused_at_startup(config, directive="Require early")
    assert "Unknown Authz provider: early" in out, out


def test_the_same_name_twice_is_refused():
    line = f"WasmAuthzProvider twice {guest('phase_probe', P2)}\n"
    _, out = refused_at_startup(line + line, directive="WasmAuthzProvider twice")
    assert "`Require twice` already has a provider (httpd's own or an earlier WasmAuthzProvider line)" in out, out


def test_the_name_of_one_of_httpds_providers_is_refused():
    _, out = refused_at_startup(f"WasmAuthzProvider valid-user {guest('phase_probe', P2)}\n", ["authz_user"],
                                directive="WasmAuthzProvider")
    assert "`Require valid-user` already has a provider" in out, out
