"""What a shared store costs on the request path: the rate-limit example (an access-checker
that reads and writes one counter per request) over shmcb and over a local redis-server,
against the same static file with no limiter, in one httpd and one run.

Every request comes from one client address, so every request reads and writes the same key:
for shmcb, the worst case of its global mutex. The limit is too high to be reached. Instances
are kept (`WasmApacheModuleScope server`), so the figures are the store's cost, not
instantiation's. Ratios are medians of per-round ratios, as in bench/run.py.

    python3 bench/shared_store.py [--rounds 3] [--seconds 4] [--connections 16]

No assertion and no target: the figures are for reading.
"""

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Apache, Redis, guest  # noqa: E402
from run import MPM, arguments, print_cases, wrk  # noqa: E402

CASES = ["plain", "shmcb", "redis"]


def config(redis_port):
    limiter = guest("rate_limit", "wasm32-wasip2")
    return f"""WasmSharedStore shmcb shmcb:{{root}}/shmcb(1048576)
WasmSharedStore redis redis:127.0.0.1:{redis_port}
WasmSharedStoreGrant shmcb {limiter}
WasmSharedStoreGrant redis {limiter}
WasmApacheModuleScope server
<Location /shmcb>
    WasmApacheModule {limiter} "shmcb 4000000000/3600"
</Location>
<Location /redis>
    WasmApacheModule {limiter} "redis 4000000000/3600"
</Location>
"""


def main():
    args = arguments(__doc__, rounds=3, seconds=4, connections=16)
    scripts = Path(tempfile.mkdtemp(prefix="mod_wasm_bench_"))
    rounds = {name: [] for name in CASES}
    with Redis() as redis:
        server = Apache(config(redis.port), extra_modules=["socache_shmcb", "socache_redis"], mpm_settings=MPM,
                        log_level="error")
        for name in CASES:
            (server.dir / "htdocs" / name).mkdir()
            (server.dir / "htdocs" / name / "page.txt").write_text("hello\n")
        for p in [server.dir, *server.dir.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        with server:
            print(f"{os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds}s; {args.rounds} rounds, medians")
            for _ in range(args.rounds):
                for name in CASES:
                    rounds[name].append(wrk(server.port, f"/{name}/page.txt", "GET", args.seconds, args.connections, scripts))
    shutil.rmtree(scripts, ignore_errors=True)
    print_cases(rounds)
    print("\n| ratio (median of per-round ratios) | measured |\n|---|---:|")
    for name in CASES[1:]:
        ratio = statistics.median(x["rps"] / y["rps"] for x, y in zip(rounds[name], rounds["plain"]))
        print(f"| rate limit on {name} / no limiter | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
