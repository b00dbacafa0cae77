"""Per-module figures on mod_status's server-status page, read back after known traffic, from
several prefork children at once (the counters are shared by every child)."""

import concurrent.futures

import pytest

from harness import Apache, guest, location, section

P2 = "wasm32-wasip2"
HEADERS = guest("add_headers", P2)

CONFIG = "\n".join([
    section("/server-status", "SetHandler server-status"),
    location("/hello", "hello"),
    location("/app", "http-app", "WasmTimeout 300ms", "WasmMemoryLimit 32M", target=P2),
    section("/ext", f'WasmApacheModule {HEADERS} "set X-Test yes"'),
    section("/pooled", "WasmApacheModuleScope server", f'WasmApacheModule {HEADERS} "set X-Test pooled"'),
])

CONCURRENT = 40


@pytest.fixture(scope="module")
def server():
    apache = Apache(CONFIG, mpm="prefork", extra_modules=["status"], log_level="warn wasm:info",
                    mpm_settings="StartServers 4\nMinSpareServers 4\nMaxSpareServers 8\nMaxRequestWorkers 8\n")
    apache.add_files({"ext/page.txt": "page\n", "pooled/page.txt": "page\n"})
    with apache:
        yield apache


def figures(server):
    """server-status?auto as {module path: {key: value}}."""
    status, _, body = server.get("/server-status?auto")
    assert status == 200
    lines = dict(line.split(": ", 1) for line in body.decode().splitlines() if ": " in line)
    modules = {}
    for i in range(int(lines["WasmModules"])):
        prefix = f"WasmModule{i}"
        modules[lines[prefix + "Path"]] = {k[len(prefix):]: v for k, v in lines.items() if k.startswith(prefix)}
    return modules


def test_server_status_counts_calls_failures_and_instances_across_children(server):
    # Concurrent requests over the prefork children: every one must be counted once.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: server.get("/hello")[0], range(CONCURRENT)))
    assert statuses == [200] * CONCURRENT
    for _ in range(3):
        status, headers, _ = server.get("/ext/page.txt")
        assert status == 200 and headers["x-test"] == "yes"  # the hook ran
    for _ in range(4):
        assert server.get("/pooled/page.txt")[1]["x-test"] == "pooled"
    mark = server.log_mark()
    assert server.get("/app/hello")[0] == 200
    assert server.get("/app/sleep?ms=5000")[0] == 503
    assert server.get("/app/spin?ms=5000")[0] == 503
    assert server.get("/app/alloc?mib=64")[0] == 500
    assert server.get("/app/panic")[0] == 500
    assert server.wait_log("http-app serving /app/panic", since=mark)

    pids = {pid for pid in server.children()}
    assert len(pids) >= 2, "the counts below must add up over several children"
    modules = figures(server)
    hello, app, headers = (modules[str(guest("hello"))], modules[str(guest("http-app", P2))], modules[str(HEADERS)])

    assert hello["Calls-request"] == str(CONCURRENT)
    assert (hello["Traps"], hello["Timeouts"], hello["MemoryRefusals"]) == ("0", "0", "0")
    assert float(hello["MeanMicroseconds"]) > 0 and float(hello["P99Microseconds"]) >= float(hello["MeanMicroseconds"]) / 2
    assert hello["InstancesLive"] == "0", "no request is running"

    assert app["Calls-request"] == "5"
    assert (app["Traps"], app["Timeouts"], app["MemoryRefusals"]) == ("1", "2", "1")
    # Two calls stopped at 300 ms: the p99 bucket lies at or above that.
    assert float(app["P99Microseconds"]) >= 300_000

    assert headers["Calls-fixups"] == "7" and "Calls-request" not in headers
    # Request scope drops its instances; the server-scope ones wait in the pools of the
    # children that served /pooled (one per child at a time).
    pooled = int(headers["InstancesPooled"])
    assert 1 <= pooled <= 4 and headers["InstancesLive"] == str(pooled)


def test_the_html_page_has_a_row_per_module(server):
    status, _, body = server.get("/server-status")
    page = body.decode()
    assert status == 200 and "<h2>mod_wasm</h2>" in page
    assert f"<td>{guest('hello')}</td>" in page
