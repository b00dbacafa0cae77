"""mod_wasm against its peers, in one run (docs/benchmarks.md).

One httpd with mod_wasm serves every case; a second, identical but without mod_wasm loaded,
serves the "module not loaded" baseline. The FastCGI peer is a long-lived C program (libfcgi,
8 threads) on a loopback port, which mod_proxy_fcgi reaches with its default settings. wrk
measures each case on 127.0.0.1 for a few seconds, round after round, the cases
interleaved. Each case reports its median round; each
ratio is the median of the ratios measured within one round (the two cases a few seconds
apart, on the same machine state), which this 2-core machine's noise affects least.

    python3 bench/run.py [--rounds 5] [--seconds 5] [--connections 32] [--only TEXT ...]

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
from harness import Apache, free_port, guest  # noqa: E402

# The locations whose cases add `X-Test: yes` to a static file (mod_lua, mod_headers, Wasm).
HEADER_DIRS = ["lua-fixups", "headers", "wasm-fixups", "wasm-fixups-server", "python-fixups", "python-fixups-server"]

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

FASTCGI_ECHO = r"""
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
/* The persistent CGI peer: the same echo, served by a long-lived FastCGI process. */
static int listener;
static void *serve(void *unused) {
    FCGX_Request req;
    char buf[65536];
    (void)unused;
    FCGX_InitRequest(&req, listener, 0);
    while (FCGX_Accept_r(&req) == 0) {
        FCGX_PutS("Content-Type: application/octet-stream\r\n\r\n", req.out);
        int got;
        while ((got = FCGX_GetStr(buf, sizeof buf, req.in)) > 0)
            FCGX_PutStr(buf, got, req.out);
        FCGX_Finish_r(&req);
    }
    return NULL;
}
int main(int argc, char **argv) {
    pthread_t threads[8];
    if (argc != 2 || FCGX_Init() != 0) return 2;
    signal(SIGTERM, SIG_DFL); /* libfcgi defers SIGTERM to the next accept; the bench stops us at once */
    listener = FCGX_OpenSocket(argv[1], 128);
    if (listener < 0) return 1;
    for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, serve, NULL);
    for (int i = 0; i < 8; i++) pthread_join(threads[i], NULL);
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

# The same handler sending its response at once, as mod_wasm's handlers do after EOS.
LUA_FLUSHING_HANDLER = LUA_HANDLER.replace('r:puts("Hello from Lua!\\n")', 'r:puts("Hello from Lua!\\n")\n    r:flush()')

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
    ("mod_lua handler with r:flush()", "/lua/flushing.lua", "GET"),
    ("mod_lua LuaHookFixups header", "/lua-fixups/static.txt", "GET"),
    ("mod_headers Header set", "/headers/static.txt", "GET"),
    ("native CGI echo via mod_cgid", "/cgi/echo.cgi", "POST"),
    ("native FastCGI echo via mod_proxy_fcgi", "/fcgi/echo", "POST"),
    ("Wasm hello (preview1)", "/hello", "GET"),
    ("Wasm hello (preview2)", "/hello-p2", "GET"),
    ("Wasm CGI echo (preview1)", "/echo", "POST"),
    ("Wasm WIT handler", "/wit", "GET"),
    ("Wasm fixups hook header", "/wasm-fixups/static.txt", "GET"),
    ("Wasm fixups hook header (server scope)", "/wasm-fixups-server/static.txt", "GET"),
    ("Python fixups hook header", "/python-fixups/static.txt", "GET"),
    ("Python fixups hook header (server scope)", "/python-fixups-server/static.txt", "GET"),
]

RATIOS = [
    ("Wasm hello p1 / static file", "Wasm hello (preview1)", "static file", 1.0),
    ("Wasm hello p1 / mod_lua handler", "Wasm hello (preview1)", "mod_lua handler (LuaScope thread)", 1.0),
    ("Wasm hello p1 / mod_lua handler with r:flush()", "Wasm hello (preview1)",
     "mod_lua handler with r:flush()", None),
    ("Wasm hello p2 / static file", "Wasm hello (preview2)", "static file", 0.9),
    ("Wasm CGI echo / mod_cgid echo", "Wasm CGI echo (preview1)", "native CGI echo via mod_cgid", 10.0),
    ("Wasm CGI echo / FastCGI echo", "Wasm CGI echo (preview1)", "native FastCGI echo via mod_proxy_fcgi", None),
    ("Wasm fixups header (server scope) / mod_headers", "Wasm fixups hook header (server scope)",
     "mod_headers Header set", 0.95),
    ("Wasm fixups header (request scope) / mod_headers", "Wasm fixups hook header", "mod_headers Header set", 0.85),
    ("no Wasm config: loaded / not loaded", "no Wasm config, mod_wasm loaded",
     "no Wasm config, mod_wasm not loaded", 0.97),
    ("Python fixups header (server scope) / static file", "Python fixups hook header (server scope)",
     "static file", 0.75),
    ("Python fixups header (request scope) / static file", "Python fixups hook header", "static file", None),
]


def fixups_location(path, module, *directives):
    """A location whose fixups hook (an add-headers example) sets X-Test."""
    lines = "".join(f"    {d}\n" for d in directives)
    return f'<Location {path}>\n{lines}    WasmApacheModule {module} "set X-Test yes"\n</Location>'


def config(fastcgi_port):
    ext = lambda name: guest(name, "wasm32-wasip2")  # noqa: E731
    return f"""
ScriptSock {{root}}/cgid.sock
<Location /fcgi/echo>
    SetHandler "proxy:fcgi://127.0.0.1:{fastcgi_port}"
</Location>
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
{fixups_location("/wasm-fixups", ext("add_headers"))}
{fixups_location("/wasm-fixups-server", ext("add_headers"), "WasmApacheModuleScope server")}
{fixups_location("/python-fixups", ext("python_add_headers"))}
{fixups_location("/python-fixups-server", ext("python_add_headers"), "WasmApacheModuleScope server")}
"""


def prepare(apache):
    htdocs = apache.dir / "htdocs"
    for d in ["lua", "cgi", "plain", *HEADER_DIRS]:
        (htdocs / d).mkdir(exist_ok=True)
    for d in ["", "plain", *HEADER_DIRS]:
        (htdocs / d / "static.txt").write_text("Hello from a file!\n")
    (htdocs / "lua" / "hello.lua").write_text(LUA_HANDLER)
    (htdocs / "lua" / "flushing.lua").write_text(LUA_FLUSHING_HANDLER)
    (apache.dir / "fixups.lua").write_text(LUA_FIXUPS)
    src = apache.dir / "echo.c"
    src.write_text(NATIVE_CGI)
    subprocess.run(["gcc", "-O2", "-o", str(htdocs / "cgi" / "echo.cgi"), str(src)], check=True)
    for p in [apache.dir, *apache.dir.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() or p.suffix == ".cgi" else 0o644)


def start_fastcgi(workdir, port):
    """Builds the FastCGI echo (libfcgi-dev) in `workdir` and starts it on 127.0.0.1:`port`."""
    src, binary = workdir / "fastcgi_echo.c", workdir / "fastcgi_echo"
    src.write_text(FASTCGI_ECHO)
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(binary), str(src), "-lfcgi"], check=True)
    return subprocess.Popen([str(binary), f"127.0.0.1:{port}"])


def arguments(doc, rounds, seconds, connections, case_filter=False):
    """The command line every benchmark takes: rounds, seconds per case, connections (and,
    with `case_filter`, --only to measure a subset of the cases)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--seconds", type=int, default=seconds)
    ap.add_argument("--connections", type=int, default=connections)
    if case_filter:
        ap.add_argument("--only", action="append", metavar="TEXT",
                        help="measure only the cases whose name contains TEXT (may be repeated)")
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
    args = arguments(__doc__, rounds=5, seconds=5, connections=32, case_filter=True)

    scripts = Path(tempfile.mkdtemp(prefix="mod_wasm_bench_"))
    cases = [c for c in CASES if not args.only or any(t in c[0] for t in args.only)]
    rounds = {name: [] for name, _, _ in cases}
    fastcgi_port = free_port()
    fastcgi = None
    try:
        if any(path == "/fcgi/echo" for _, path, _ in cases):
            fastcgi = start_fastcgi(scripts, fastcgi_port)
        extra = ["lua", "cgid", "headers", "proxy", "proxy_fcgi"]
        server = Apache(config(fastcgi_port), extra_modules=extra, mpm_settings=MPM, log_level="error")
        baseline = Apache(config(fastcgi_port).split("<Location /hello>")[0], extra_modules=extra,
                          mpm_settings=MPM, log_level="error")
        baseline.conf.write_text(baseline.conf.read_text().replace(
            f"LoadModule wasm_module {server.conf.read_text().split('LoadModule wasm_module ')[1].split()[0]}\n", ""))
        prepare(server)
        prepare(baseline)
        with server, baseline:
            if fastcgi:
                status, _, body = server.request("POST", "/fcgi/echo", b"ping")
                assert (status, body) == (200, b"ping"), f"the FastCGI peer answered {status} {body!r}"
            # Each header-setting case must reach its module before it is measured.
            for name, path, _ in cases:
                if path.split("/")[1] in HEADER_DIRS:
                    status, headers, _ = server.get(path)
                    assert (status, headers.get("x-test")) == (200, "yes"), f"{name}: {status} {headers}"
            print(f"{os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds}s; "
                  f"{args.rounds} rounds, medians")
            for round_no in range(args.rounds):
                for name, path, method in cases:
                    port = baseline.port if path.startswith("BASELINE:") else server.port
                    rounds[name].append(wrk(port, path.removeprefix("BASELINE:"), method, args.seconds,
                                            args.connections, scripts))
                print(f"round {round_no + 1} done")
    finally:
        if fastcgi:
            fastcgi.terminate()
            fastcgi.wait()
    shutil.rmtree(scripts, ignore_errors=True)

    print_cases(rounds)
    print("\n| ratio (median of per-round ratios) | measured | min–max | target |\n|---|---:|---:|---:|")
    for label, a, b, target in RATIOS:
        if a not in rounds or b not in rounds:
            continue
        ratios = sorted(x["rps"] / y["rps"] for x, y in zip(rounds[a], rounds[b]))
        ratio = statistics.median(ratios)
        spread = f"{ratios[0]:.2f}–{ratios[-1]:.2f}"
        verdict = "(for information)" if target is None else f"≥ {target}× {'met' if ratio >= target else 'missed'}"
        # Three decimals where two would round a miss up to the target.
        shown = f"{ratio:.3f}" if target is not None and ratio < target <= round(ratio, 2) else f"{ratio:.2f}"
        print(f"| {label} | {shown}× | {spread} | {verdict} |")

if __name__ == "__main__":
    main()
