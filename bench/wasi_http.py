"""A wasi:http component under httpd + mod_wasm against the same component under
`wasmtime serve` (wasmtime's CLI of the same version as our host), same client, same machine,
one run; with a static file and a WASI command program's hello for scale.

    bench/setup.sh                      # builds wasmtime's CLI into target/bench-tools (once)
    python3 bench/wasi_http.py [--rounds 3] [--seconds 4] [--connections 16]

The component is tests/guests/http-app (wstd), its `/hello?quiet` route: a fixed body, nothing
logged. `wasmtime serve` runs with its defaults plus `-S cli` (the component imports
wasi:cli, as every Rust std component does). httpd uses bench/run.py's MPM settings.
Ratios are medians of per-round ratios, as in bench/run.py. No assertion: for reading.
"""

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from harness import Apache, free_port, guest  # noqa: E402
from run import MPM, arguments, print_cases, wrk  # noqa: E402

WASMTIME = Path(__file__).resolve().parent.parent / "target" / "bench-tools" / "bin" / "wasmtime"
HELLO = "/hello?quiet"

# (name, where, path): where is "httpd" or "wasmtime".
CASES = [
    ("static file (httpd)", "httpd", "/static.txt"),
    ("WASI command hello, preview1 (httpd + mod_wasm)", "httpd", "/command"),
    ("wasi:http hello (httpd + mod_wasm)", "httpd", "/app" + HELLO),
    ("wasi:http hello (wasmtime serve)", "wasmtime", HELLO),
]

RATIOS = [
    ("wasi:http: httpd + mod_wasm / wasmtime serve", 2, 3, 1.0),
    ("wasi:http in httpd / static file", 2, 0, None),
    ("WASI command in httpd / static file", 1, 0, None),
]


class WasmtimeServe:
    """`wasmtime serve` on a loopback port, stopped by its pid."""

    def __init__(self, component):
        self.port = free_port()
        self.cmd = [str(WASMTIME), "serve", "--addr", f"127.0.0.1:{self.port}", "-S", "cli", str(component)]

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120  # it compiles the component first
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"wasmtime serve exited: {self.cmd}")
                time.sleep(0.2)
        raise RuntimeError("wasmtime serve did not start listening")

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    args = arguments(__doc__, rounds=3, seconds=4, connections=16)
    if not WASMTIME.exists():
        sys.exit(f"{WASMTIME} missing: run bench/setup.sh")
    component = guest("http-app", "wasm32-wasip2")
    server = Apache(f"""
<Location /app>
    SetHandler wasm-handler
    WasmModule {component}
</Location>
<Location /command>
    SetHandler wasm-handler
    WasmModule {guest('hello')}
</Location>
""", mpm_settings=MPM, log_level="error")
    (server.dir / "htdocs" / "static.txt").write_text("Hello from a file!\n")
    server.make_readable()
    scripts = Path(tempfile.mkdtemp(prefix="mod_wasm_bench_"))
    rounds = {name: [] for name, _, _ in CASES}
    version = subprocess.run([str(WASMTIME), "--version"], capture_output=True, text=True).stdout.strip()
    with server, WasmtimeServe(component) as serve:
        print(f"{os.cpu_count()} cores; {version}; wrk -t2 -c{args.connections} -d{args.seconds}s; "
              f"{args.rounds} rounds, medians")
        for round_no in range(args.rounds):
            for name, where, path in CASES:
                port = server.port if where == "httpd" else serve.port
                rounds[name].append(wrk(port, path, "GET", args.seconds, args.connections, scripts))
            print(f"round {round_no + 1} done")
    shutil.rmtree(scripts, ignore_errors=True)

    print_cases(rounds)
    print("\n| ratio (median of per-round ratios) | req/s | p99 (lower is better) | target |\n|---|---:|---:|---|")
    for label, a, b, target in RATIOS:
        ours, theirs = rounds[CASES[a][0]], rounds[CASES[b][0]]
        rps = statistics.median(x["rps"] / y["rps"] for x, y in zip(ours, theirs))
        p99 = statistics.median(x["p99"] / y["p99"] for x, y in zip(ours, theirs))
        verdict = "(for information)" if target is None else \
            f"req/s ≥ {target}×, p99 ≤ 1.0× {'' if rps >= target and p99 <= 1.0 else '(missed)'}"
        print(f"| {label} | {rps:.2f}× | {p99:.2f}× | {verdict} |")


if __name__ == "__main__":
    main()
