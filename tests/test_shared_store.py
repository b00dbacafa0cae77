"""Shared stores (`WasmSharedStore`, `WasmSharedStoreGrant`) on a real apache2: shmcb shared
by the children of one server, redis (a real redis-server on loopback) shared by two servers,
the rate-limit example on both, grants and limits, and a store that goes down.

The `phase_probe` handler runs one store operation per request from its query string
(`get:STORE:KEY`, `set:STORE:KEY:VALUE`, `del:STORE:KEY`, `big:STORE:KEY:N`), answers the
result and logs `phase-probe store <query> -> <result>`; the log line's pid tells which child
served it."""

import http.client
import re

import pytest

from harness import Apache, Redis, basic_users, guest, refused_at_startup

P2 = "wasm32-wasip2"
PREFORK = "StartServers 3\nMinSpareServers 3\nMaxSpareServers 6\nMaxRequestWorkers 8\nKeepAliveTimeout 30\n"


def probe_config(stores, grants=None):
    """`stores`: {name: spec}; every store is granted to phase_probe unless `grants` names
    the ones that are."""
    lines = [f"WasmSharedStore {name} {spec}" for name, spec in stores.items()]
    lines += [f"WasmSharedStoreGrant {name} {guest('phase_probe', P2)}" for name in (grants or stores)]
    lines += [f"WasmApacheModule {guest('phase_probe', P2)}", "<Location /store>", "    SetHandler phase-probe",
              "</Location>"]
    return "\n".join(lines) + "\n"


def shmcb(name="sessions", size=262144):
    return {name: f"shmcb:{{root}}/{name}({size})"}


def op(apache, query, conn=None):
    if conn is None:
        return apache.get(f"/store?{query}")[2].decode().strip()
    conn.request("GET", f"/store?{query}")
    return conn.getresponse().read().decode().strip()


def pid_of(apache, query, mark):
    """The pid of the child that logged the operation `query` since `mark`."""
    assert apache.wait_log(f"phase-probe store {query} ->", since=mark)
    line = next(l for l in apache.log_since(mark).splitlines() if f"phase-probe store {query} ->" in l)
    return int(re.search(r"\[pid (\d+)", line).group(1))


def test_a_value_set_in_one_child_is_read_in_another():
    apache = Apache(probe_config(shmcb()), mpm="prefork", mpm_settings=PREFORK, extra_modules=["socache_shmcb"],
                    log_level="warn wasm:info")
    with apache:
        mark = apache.log_mark()
        # prefork: a child serves one connection at a time, so while the first connection
        # is kept alive the second is served by another child.
        first = http.client.HTTPConnection("127.0.0.1", apache.port, timeout=30)
        second = http.client.HTTPConnection("127.0.0.1", apache.port, timeout=30)
        try:
            assert op(apache, "set:sessions:user-7:alice", first) == "none"
            assert op(apache, "get:sessions:user-7", second) == "value=alice"
            assert pid_of(apache, "set:sessions:user-7:alice", mark) != pid_of(apache, "get:sessions:user-7", mark)
            assert op(apache, "del:sessions:user-7", second) == "none"
            assert op(apache, "get:sessions:user-7", first) == "none"
        finally:
            first.close()
            second.close()


@pytest.fixture(scope="module")
def server():
    stores = {**shmcb("sessions"), **shmcb("other"), **shmcb("tiny", 8192)}
    apache = Apache(probe_config(stores, grants=["sessions", "tiny"]), extra_modules=["socache_shmcb"],
                    log_level="warn wasm:info")
    with apache:
        yield apache


def test_a_store_not_granted_to_the_module_is_refused(server):
    assert op(server, "get:other:k").startswith('error=Error::InvalidValue("no shared store other is granted to this module')
    assert op(server, "get:nowhere:k").startswith('error=Error::InvalidValue("no shared store nowhere is granted')


def test_keys_values_and_their_limits(server):
    assert op(server, "set:sessions:" + "k" * 64 + ":v") == "none"
    assert op(server, "get:sessions:" + "k" * 64) == "value=v"
    assert op(server, "get:sessions:" + "k" * 65) == 'error=Error::InvalidValue("a key is 1 to 64 bytes, not 65")'
    assert op(server, "big:sessions:large:65537") == 'error=Error::InvalidValue("a value is at most 65536 bytes, not 65537")'
    assert op(server, "big:sessions:large:4000") == "none"
    assert op(server, "get:sessions:large") == "value=" + "x" * 4000


def test_a_value_the_provider_cannot_hold_is_an_io_error_and_a_log_line(server):
    # shmcb divides its memory among subcaches: 8 KiB holds no 6,000-byte value.
    mark = server.log_mark()
    result = op(server, "big:tiny:large:6000")
    assert result.startswith('error=Error::Io("shared store tiny: set failed: '), result
    assert server.wait_log("shared store tiny: set failed: ", since=mark)
    assert op(server, "set:sessions:after:ok") == "none"  # the worker goes on


# -- redis: two servers, one store ------------------------------------------------------------

def rate_limited(redis_port, limit="3/3600"):
    return f"""WasmSharedStore ratelimit redis:127.0.0.1:{redis_port}
WasmSharedStoreGrant ratelimit {guest('rate_limit', P2)} {guest('phase_probe', P2)}
<Location /limited>
    WasmApacheModule {guest('rate_limit', P2)} "ratelimit {limit}"
</Location>
WasmApacheModule {guest('phase_probe', P2)}
<Location /store>
    SetHandler phase-probe
</Location>
RedisTimeout 2
"""


def test_two_servers_share_a_redis_store_and_its_rate_limit():
    with Redis() as redis:
        config = rate_limited(redis.port)
        a = Apache(config, extra_modules=["socache_redis"], log_level="warn wasm:info")
        b = Apache(config, extra_modules=["socache_redis"], log_level="warn wasm:info")
        for apache in (a, b):
            apache.add_files({"limited/page.txt": "page\n"})
        with a, b:
            assert op(a, "set:ratelimit:shared:from-a") == "none"
            assert op(b, "get:ratelimit:shared") == "value=from-a"
            # Three requests in the window, spread over both servers; the fourth is refused
            # wherever it goes.
            statuses = [s.get("/limited/page.txt")[0] for s in (a, b, a)]
            assert statuses == [200, 200, 200]
            for s in (b, a):
                status, headers, _ = s.get("/limited/page.txt")
                assert status == 429
                assert 0 < int(headers["retry-after"]) <= 3600

            # The store goes down: the guest gets an error (and says what it does about it),
            # httpd logs it, the limiter lets requests through, the workers keep serving.
            redis.stop()
            mark = a.log_mark()
            for _ in range(2):
                assert a.get("/limited/page.txt")[0] == 200
            assert a.wait_log("shared store ratelimit: get failed: ", since=mark)
            assert a.wait_log("rate-limit: letting the request through, the store failed: Error::Io(", since=mark)
            # Once apr-util has marked the server down (for 5 s), a get cannot tell "down" from
            # "not set" and answers not set; a set still fails with an error.
            assert op(a, "set:ratelimit:shared:y").startswith('error=Error::Io("shared store ratelimit: set failed: ')


# -- configuration errors ---------------------------------------------------------------------

def test_a_provider_httpd_has_not_loaded_stops_startup():
    _, out = refused_at_startup("WasmSharedStore sessions shmcb:/tmp/x(65536)\n", directive="WasmSharedStore")
    assert "`shmcb` is not a socache provider httpd knows: load it first (LoadModule socache_shmcb_module)" in out, out


def test_a_bad_provider_argument_is_the_providers_message():
    _, out = refused_at_startup("WasmSharedStore sessions shmcb:{root}/x(lots)\n", ["socache_shmcb"], directive="WasmSharedStore")
    assert "WasmSharedStore" in out and "shmcb: " in out, out


def test_a_grant_of_an_undefined_store_stops_startup():
    _, out = refused_at_startup(f"WasmSharedStoreGrant sessions {guest('phase_probe', P2)}\n", directive="WasmSharedStoreGrant")
    assert "no store sessions is defined (a WasmSharedStore line must come first)" in out, out


def test_a_grant_to_a_file_that_is_no_extension_module_stops_startup():
    config = "WasmSharedStore sessions shmcb:{root}/x(65536)\n" + f"WasmSharedStoreGrant sessions {guest('hello')}\n"
    _, out = refused_at_startup(config, ["socache_shmcb"], directive="WasmSharedStoreGrant")
    assert "hello.wasm" in out and "does not target the apache:httpd world" in out, out


def test_a_store_name_defined_twice_stops_startup():
    line = "WasmSharedStore sessions shmcb:{root}/x(65536)\n"
    _, out = refused_at_startup(line + line, ["socache_shmcb"], directive="WasmSharedStore")
    assert "sessions is already defined by an earlier WasmSharedStore line" in out, out


# -- the session-login example: log in on one server, be known on both -----------------------

def session_config(redis_port):
    login = guest("session_login", P2)
    auth = """    AuthType Basic
    AuthName members
    AuthBasicProvider file
    AuthUserFile {root}/users
    Require valid-user"""
    return f"""WasmSharedStore sessions redis:127.0.0.1:{redis_port}
WasmSharedStoreGrant sessions {login}
WasmApacheModule {login} "sessions 600" first
<Location /login>
    SetHandler session-login
{auth}
</Location>
<Location /logout>
    SetHandler session-logout
</Location>
<Location /members>
{auth}
</Location>
"""


def test_a_session_made_on_one_server_is_known_on_the_other_until_logout():
    modules = ["socache_redis", "authn_core", "authn_file", "auth_basic", "authz_user"]
    with Redis() as redis:
        servers = [Apache(session_config(redis.port), extra_modules=modules) for _ in range(2)]
        for apache in servers:
            basic = {"Authorization": basic_users(apache, {"alice": "secret"})["alice"]}
            apache.add_files({"members/page.txt": "members only\n"})
        a, b = servers
        with a, b:
            assert b.get("/members/page.txt")[0] == 401
            status, headers, body = a.get("/login?next=/members/page.txt", headers=basic)
            assert (status, body) == (303, b"logged in as alice\n")
            assert headers["location"] == "/members/page.txt"
            cookie = headers["set-cookie"]
            assert re.fullmatch(r"wasm_session=[0-9a-f]{32}; Path=/; Max-Age=600; HttpOnly; SameSite=Lax", cookie), cookie
            session = {"Cookie": "theme=dark; " + cookie.split(";")[0]}
            # The other server knows the session (no Authorization header is sent).
            assert b.get("/members/page.txt", headers=session)[:3:2] == (200, b"members only\n")
            assert a.get("/members/page.txt", headers=session)[0] == 200
            # A made-up session id is nobody.
            assert b.get("/members/page.txt", headers={"Cookie": "wasm_session=" + "0" * 32})[0] == 401
            status, headers, _ = b.get("/logout", headers=session)
            assert status == 200 and headers["set-cookie"].startswith("wasm_session=; Path=/; Max-Age=0")
            assert a.get("/members/page.txt", headers=session)[0] == 401
