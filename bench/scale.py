"""Concurrency 256 on mpm_event (docs/benchmarks.md): wrk at c=32 and c=256 against the
Wasm hello handler; prints errors, req/s and the children's resident memory.

    python3 bench/scale.py [--seconds 10]
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Apache, guest, vm_kib  # noqa: E402

MPM = ("StartServers 4\nServerLimit 8\nThreadsPerChild 64\nMaxRequestWorkers 512\n"
       "MinSpareThreads 64\nMaxSpareThreads 512\nMaxConnectionsPerChild 0\nListenBacklog 1024\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    body = f"<Location /hello>\n    SetHandler wasm-handler\n    WasmModule {guest('hello')}\n</Location>\n"
    with Apache(body, mpm_settings=MPM, log_level="error") as server:
        print("| connections | req/s | p99 ms | errors | children | RSS per child (MiB) |\n|---:|---:|---:|---|---:|---|")
        for connections in (32, 256):
            out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{args.seconds}s", "--latency",
                                  f"http://127.0.0.1:{server.port}/hello"], capture_output=True, text=True).stdout
            rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
            p99 = re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)
            errors = re.search(r"Socket errors:.*|Non-2xx or 3xx responses: \d+", out)
            rss = [vm_kib(pid, "VmRSS") // 1024 for pid in server.children()]
            print(f"| {connections} | {rps:.0f} | {p99} | {errors.group(0) if errors else 'none'} | "
                  f"{len(rss)} | {', '.join(map(str, sorted(rss)))} |")
        crashed = server.error_log().count("exit signal")
        print(f"\nchildren crashed: {crashed}")


if __name__ == "__main__":
    main()
