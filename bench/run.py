"""mod_wasm against its peers, in one run (docs/benchmarks.md).

One httpd with mod_wasm serves every case; a second, identical but without mod_wasm loaded,
serves the "module not loaded" baseline. wrk measures each case on 127.0.0.1 for a few
seconds, round after round, the cases interleaved. Each case reports its median round; each
ratio is the median of the ratios measured within one round (the two cases a few seconds
apart, on the same machine state), which this 2-core machine's noise affects least.

    python3 bench/run.py [--rounds 5] [--seconds 5] [--connections 32]

Prints requests/s, p50 and p99 latency per case and the ratios the project targets. No
assertion: the figures are for reading, not for a test to time.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Apache, guest  # noqa: E402

MPM = ("StartServers 2\nServerLimit 4\nThreadsPerChild 64\nMaxRequestWorkers 256\n"
       "MinSpareThreads 64\nMaxSpareThreads 256\nMaxConnectionsPerChild 0\n")
ECHO_BYTES = 1024

NATIVE_CGI = r"""
#include <stdio.h>
#include <stdlib.h>
/* The CGI baseline: echoes the request body, like the Wasm echo example. */
int main(void) {
    const char *len = getenv("CONTENT_LENGTH");
    long n = len ? atol(len) : 0;
    char buf[65536];
    fputs("Content-Type: application/octet-stream\r\n\r\n", stdout);
    while (n > 0) {
        size_t got = fread(buf, 1, n < (long)sizeof buf ? (size_t)n : sizeof buf, stdin);
        if (got == 0) break;
        fwrite(buf, 1, got, stdout);
        n -= (long)got;
    }
    return 0;
}
"""

LUA_HANDLER = """
function handle(r)
    r.content_type = "text/plain"
    r:puts("Hello from Lua!\\n")
    return apache2.OK
end
"""

LUA_FIXUPS = """
function add_header(r)
    r.headers_out["X-Test"] = "yes"
    return apache2.DECLINED
end
"""

# (name, path, method) in the order they are measured each round.
CASES = [
    ("static file", "/static.txt", "GET"),
    ("no Wasm config, mod_wasm loaded", "/plain/static.txt", "GET"),
    ("no Wasm config, mod_wasm not loaded", "BASELINE:/plain/static.txt", "GET"),
    ("mod_lua handler (LuaScope thread)", "/lua/hello.lua", "GET"),
    ("mod_lua LuaHookFixups header", "/lua-fixups/static.txt", "GET"),
    ("mod_headers Header set", "/headers/static.txt", "GET"),
    ("native CGI echo via mod_cgid", "/cgi/echo.cgi", "POST"),
    ("Wasm hello (preview1)", "/hello", "GET"),
    ("Wasm hello (preview2)", "/hello-p2", "GET"),
    ("Wasm CGI echo (preview1)", "/echo", "POST"),
    ("Wasm WIT handler", "/wit", "GET"),
    ("Wasm fixups hook header", "/wasm-fixups/static.txt", "GET"),
    ("Wasm fixups hook header (server scope)", "/wasm-fixups-server/static.txt", "GET"),
]

RATIOS = [
    ("Wasm hello p1 / static file", "Wasm hello (preview1)", "static file", 0.9),
    ("Wasm hello p1 / mod_lua handler", "Wasm hello (preview1)", "mod_lua handler (LuaScope thread)", 1.0),
    ("Wasm CGI echo / mod_cgid echo", "Wasm CGI echo (preview1)", "native CGI echo via mod_cgid", 10.0),
    ("Wasm fixups header (server scope) / mod_headers", "Wasm fixups hook header (server scope)",
     "mod_headers Header set", 0.95),
    ("Wasm fixups header (request scope) / mod_headers", "Wasm fixups hook header", "mod_headers Header set", None),
    ("no Wasm config: loaded / not loaded", "no Wasm config, mod_wasm loaded",
     "no Wasm config, mod_wasm not loaded", 0.97),
]


def config():
    ext = lambda name: guest(name, "wasm32-wasip2")  # noqa: E731
    return f"""
ScriptSock {{root}}/cgid.sock
LuaScope thread
<Directory {{root}}/htdocs/lua>
    SetHandler lua-script
</Directory>
<Location /lua-fixups>
    LuaHookFixups {{root}}/fixups.lua add_header
</Location>
<Location /headers>
    Header set X-Test yes
</Location>
<Directory {{root}}/htdocs/cgi>
    Options +ExecCGI
    SetHandler cgi-script
</Directory>
<Location /hello>
    SetHandler wasm-handler
    WasmModule {guest('hello')}
</Location>
<Location /hello-p2>
    SetHandler wasm-handler
    WasmModule {guest('hello', 'wasm32-wasip2')}
</Location>
<Location /echo>
    SetHandler wasm-handler
    WasmModule {guest('echo')}
    WasmEnableCGI On
</Location>
<Location /wit>
    SetHandler wasm-hello
    WasmApacheModule {ext('conformance')}
</Location>
<Location /wasm-fixups>
    WasmApacheModule {ext('add_headers')} "set X-Test yes"
</Location>
<Location /wasm-fixups-server>
    WasmApacheModuleScope server
    WasmApacheModule {ext('add_headers')} "set X-Test yes"
</Location>
"""


def prepare(apache):
    htdocs = apache.dir / "htdocs"
    for d in ["lua", "cgi", "plain", "lua-fixups", "headers", "wasm-fixups", "wasm-fixups-server"]:
        (htdocs / d).mkdir(exist_ok=True)
    for d in ["", "plain", "lua-fixups", "headers", "wasm-fixups", "wasm-fixups-server"]:
        (htdocs / d / "static.txt").write_text("Hello from a file!\n")
    (htdocs / "lua" / "hello.lua").write_text(LUA_HANDLER)
    (apache.dir / "fixups.lua").write_text(LUA_FIXUPS)
    src = apache.dir / "echo.c"
    src.write_text(NATIVE_CGI)
    subprocess.run(["gcc", "-O2", "-o", str(htdocs / "cgi" / "echo.cgi"), str(src)], check=True)
    for p in [apache.dir, *apache.dir.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() or p.suffix == ".cgi" else 0o644)


def arguments(doc, rounds, seconds, connections):
    """The command line every benchmark takes: rounds, seconds per case, connections."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--seconds", type=int, default=seconds)
    ap.add_argument("--connections", type=int, default=connections)
    return ap.parse_args()


def wrk(port, path, method, seconds, connections, script_dir):
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if method == "POST":
        script = script_dir / "post.lua"
        script.write_text(f'wrk.method = "POST"\nwrk.body = string.rep("x", {ECHO_BYTES})\n'
                          'wrk.headers["Content-Type"] = "application/octet-stream"\n')
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return {"rps": rps, "p50": pct(50), "p99": pct(99), "errors": errors.group(0) if errors else ""}


def print_cases(rounds):
    """The per-case table: each case's median round, the spread, latencies and any errors."""
    print("\n| case | req/s (median) | min–max | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---|")
    for name, results in rounds.items():
        results = sorted(results, key=lambda r: r["rps"])
        r = results[len(results) // 2]
        errors = "; ".join(sorted({x["errors"] for x in results if x["errors"]}))
        print(f"| {name} | {r['rps']:.0f} | {results[0]['rps']:.0f}–{results[-1]['rps']:.0f} | "
              f"{r['p50']:.2f} | {r['p99']:.2f} | {errors} |")


def main():
    args = arguments(__doc__, rounds=5, seconds=5, connections=32)

    extra = ["lua", "cgid", "headers"]
    server = Apache(config(), extra_modules=extra, mpm_settings=MPM, log_level="error")
    baseline = Apache(config().split("<Location /hello>")[0], extra_modules=extra, mpm_settings=MPM,
                      log_level="error")
    baseline.conf.write_text(baseline.conf.read_text().replace(
        f"LoadModule wasm_module {server.conf.read_text().split('LoadModule wasm_module ')[1].split()[0]}\n", ""))
    prepare(server)
    prepare(baseline)
    scripts = Path(tempfile.mkdtemp(prefix="mod_wasm_bench_"))
    rounds = {name: [] for name, _, _ in CASES}
    with server, baseline:
        print(f"{os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds}s; "
              f"{args.rounds} rounds, medians")
        for round_no in range(args.rounds):
            for name, path, method in CASES:
                port = baseline.port if path.startswith("BASELINE:") else server.port
                rounds[name].append(wrk(port, path.removeprefix("BASELINE:"), method, args.seconds,
                                        args.connections, scripts))
            print(f"round {round_no + 1} done")
    shutil.rmtree(scripts, ignore_errors=True)

    print_cases(rounds)
    print("\n| ratio (median of per-round ratios) | measured | min–max | target |\n|---|---:|---:|---:|")
    for label, a, b, target in RATIOS:
        ratios = sorted(x["rps"] / y["rps"] for x, y in zip(rounds[a], rounds[b]))
        ratio = statistics.median(ratios)
        spread = f"{ratios[0]:.2f}–{ratios[-1]:.2f}"
        verdict = "(for information)" if target is None else f"≥ {target}× {'' if ratio >= target else '(missed)'}"
        print(f"| {label} | {ratio:.2f}× | {spread} | {verdict} |")

if __name__ == "__main__":
    main()
