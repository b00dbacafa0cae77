"""Wasm output filters against no filter, mod_substitute and mod_lua, in one run
(docs/benchmarks.md).

An HTML page of 100 KiB and one of 1 MiB (lorem ipsum, "Lorem" about every 450 bytes) go
through, each in its own `<Location>` of one httpd:

- no filter;
- a Wasm filter that copies every piece through the guest unchanged (`emit(data)`);
- a Wasm substitution (Lorem → LOREM, the SDK's `Replace`);
- the same substitution with mod_substitute (`s/Lorem/LOREM/n`, a fixed string) and with a
  mod_lua `LuaOutputFilter` (`string.gsub`).

wrk measures each case for a few seconds, round after round, the cases interleaved; ratios
are medians of per-round ratios (see bench/run.py). Throughput is requests/s × page size.

    python3 bench/filters.py [--rounds 3] [--seconds 4] [--connections 16]

No assertion: the figures are for reading, not for a test to time.
"""

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Apache, guest  # noqa: E402
from run import MPM, arguments, wrk  # noqa: E402

SIZES = {"100K": 100 * 1024, "1M": 1024 * 1024}

LUA_FILTER = """
function subst(r)
    coroutine.yield()
    while bucket do
        coroutine.yield((string.gsub(bucket, "Lorem", "LOREM")))
    end
end
"""

# (case, location prefix)
CASES = [
    ("no filter", "/plain"),
    ("Wasm copy filter", "/wasm-copy"),
    ("Wasm copy filter (server scope)", "/wasm-copy-server"),
    ("Wasm substitution", "/wasm-subst"),
    ("mod_substitute", "/substitute"),
    ("mod_lua LuaOutputFilter", "/lua"),
]

RATIOS = [
    ("Wasm copy / no filter", "Wasm copy filter", "no filter", 0.9),
    ("Wasm copy (server scope) / no filter", "Wasm copy filter (server scope)", "no filter", 0.9),
    ("Wasm substitution / mod_substitute", "Wasm substitution", "mod_substitute", 1.0),
    ("Wasm substitution / mod_lua", "Wasm substitution", "mod_lua LuaOutputFilter", 3.0),
]


def config():
    probe = guest("filter_probe", "wasm32-wasip2")
    return f"""
WasmOutputFilter WASMCOPY {probe}
WasmOutputFilter WASMSUBST {probe} "subst=Lorem/LOREM"
LuaOutputFilter LUASUBST {{root}}/subst.lua subst
LuaScope thread
<Location /wasm-copy>
    SetOutputFilter WASMCOPY
</Location>
<Location /wasm-copy-server>
    WasmApacheModuleScope server
    SetOutputFilter WASMCOPY
</Location>
<Location /wasm-subst>
    SetOutputFilter WASMSUBST
</Location>
<Location /substitute>
    SetOutputFilter SUBSTITUTE
    Substitute "s/Lorem/LOREM/n"
</Location>
<Location /lua>
    SetOutputFilter LUASUBST
</Location>
"""


def page(size):
    para = ("<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
            "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
            "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure "
            "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla.</p>\n")
    head = "<html><head><title>bench</title></head><body>\n"
    body = head + para * (size // len(para) + 1)
    return body[:size - len("</body></html>\n")] + "</body></html>\n"


def prepare(apache):
    htdocs = apache.dir / "htdocs"
    for _, prefix in CASES:
        d = htdocs / prefix.strip("/")
        d.mkdir(exist_ok=True)
        for name, size in SIZES.items():
            (d / f"{name}.html").write_text(page(size))
    (apache.dir / "subst.lua").write_text(LUA_FILTER)
    for p in [apache.dir, *apache.dir.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def main():
    args = arguments(__doc__, rounds=3, seconds=4, connections=16)

    server = Apache(config(), extra_modules=["lua", "substitute", "filter"], mpm_settings=MPM, log_level="error")
    prepare(server)
    scripts = Path(tempfile.mkdtemp(prefix="mod_wasm_bench_"))
    keys = [(size, name, prefix) for size in SIZES for name, prefix in CASES]
    rounds = {(size, name): [] for size, name, _ in keys}
    with server:
        # The filters must really filter: check each case's output once.
        for size, name, prefix in keys:
            status, _, body = server.get(f"{prefix}/{size}.html")
            substituted = "substitution" in name or name.startswith("mod_")
            assert status == 200 and (b"LOREM" in body) == substituted and len(body) == SIZES[size], (name, size)
        print(f"{os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds}s; {args.rounds} rounds, medians")
        for round_no in range(args.rounds):
            for size, name, prefix in keys:
                rounds[(size, name)].append(wrk(server.port, f"{prefix}/{size}.html", "GET", args.seconds,
                                                args.connections, scripts))
            print(f"round {round_no + 1} done")
    shutil.rmtree(scripts, ignore_errors=True)

    print("\n| page | case | req/s (median) | MB/s | p50 ms | p99 ms | errors |\n|---|---|---:|---:|---:|---:|---|")
    for size, name, _ in keys:
        results = sorted(rounds[(size, name)], key=lambda r: r["rps"])
        r = results[len(results) // 2]
        errors = "; ".join(sorted({x["errors"] for x in results if x["errors"]}))
        mbs = r["rps"] * SIZES[size] / 1e6
        print(f"| {size} | {name} | {r['rps']:.0f} | {mbs:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {errors} |")
    print("\n| page | ratio (median of per-round ratios) | measured | min–max | target |\n|---|---|---:|---:|---:|")
    for size in SIZES:
        for label, a, b, target in RATIOS:
            ratios = sorted(x["rps"] / y["rps"] for x, y in zip(rounds[(size, a)], rounds[(size, b)]))
            ratio = statistics.median(ratios)
            verdict = f"≥ {target}× {'' if ratio >= target else '(missed)'}"
            print(f"| {size} | {label} | {ratio:.2f}× | {ratios[0]:.2f}–{ratios[-1]:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
