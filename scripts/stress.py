"""Proof under load (docs/reliability.md): one httpd with mod_wasm on a loopback port.

1. storm: hostile requests interleaved with well-behaved ones at concurrency 32 for 60 s.
   Well-behaved requests must all succeed, no child may crash, and every hostile request
   must be answered within its deadline + 1 s.
2. soak: 100,000 well-behaved requests; the children's resident memory at 10k and 100k.
3. graceful: `graceful` restart under load while the .wasm file is replaced: no failed
   request, and the new program is served afterwards.

    python3 scripts/stress.py [--seconds 60] [--concurrency 32] [--requests 100000]

Prints the figures and exits non-zero if a criterion fails. Traffic goes to 127.0.0.1 only
and every loop is bounded in count and time.
"""

import argparse
import http.client
import os
import random
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Apache, guest, location, vm_kib  # noqa: E402

HOSTILE_TIMEOUT = 1.0  # WasmTimeout of the hostile locations, seconds
MPM = ("StartServers 2\nServerLimit 4\nThreadsPerChild 32\nMaxRequestWorkers 128\n"
       "MinSpareThreads 32\nMaxSpareThreads 128\nMaxConnectionsPerChild 0\n")


def config(app):
    hostile = f"WasmEnableCGI On\n    WasmTimeout {HOSTILE_TIMEOUT}s\n    WasmMemoryLimit 64M"
    return "".join([
        location("/hello", "hello"),
        location("/hello-p2", "hello", target="wasm32-wasip2"),
        location("/echo", "echo", "WasmEnableCGI On"),
        location("/bad", "probe", hostile),
        location("/bad-p2", "probe", hostile, target="wasm32-wasip2"),
        f"<Location /app>\n    SetHandler wasm-handler\n    WasmModule {app}\n    WasmArg args\n</Location>\n",
        f"<Location /api>\n    SetHandler json-api\n    WasmApacheModule {guest('json_api', 'wasm32-wasip2')}\n</Location>\n",
        f"<Location /hook>\n    WasmApacheModule {guest('ext_probe', 'wasm32-wasip2')} \"panic-fixups\"\n</Location>\n",
        # Pooled instances: a trap must not reach the next request; state must not leak.
        f"<Location /pooled>\n    SetHandler ext-probe\n    WasmApacheModuleScope server\n"
        f"    WasmApacheModule {guest('ext_probe', 'wasm32-wasip2')} \"trap-if-asked\"\n</Location>\n",
        f"WasmApacheModule {guest('request_id', 'wasm32-wasip2')}\n",
    ])


GOOD = [
    ("GET", "/hello", None, lambda b: b == b"Hello from WebAssembly!\n"),
    ("GET", "/hello-p2", None, lambda b: b == b"Hello from WebAssembly!\n"),
    ("POST", "/echo", b"x" * 4096, lambda b: b == b"x" * 4096),
    ("GET", "/api/items/1?a=b", None, lambda b: b.startswith(b'{"method":"GET"')),
    ("GET", "/pooled", None, lambda b: b == b"user= body_in_access=- phases=access,fixups,handler\n"),
]
HOSTILE = ["/bad?do=loop", "/bad?do=sleep&n=30", "/bad?do=trap", "/bad?do=memory-bomb",
           "/bad?do=stack-overflow", "/bad-p2?do=loop", "/bad-p2?do=memory-bomb",
           "/bad?do=endless-stdout", "/bad?do=big-header&n=1048576", "/hook/x", "/pooled?trap"]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.good_ok = self.good_failed = self.hostile = self.hostile_late = 0
        self.worst_hostile = 0.0
        self.failures = []

    def add_good(self, ok, why=""):
        with self.lock:
            if ok:
                self.good_ok += 1
            else:
                self.good_failed += 1
                if len(self.failures) < 10:
                    self.failures.append(why)

    def add_hostile(self, seconds):
        with self.lock:
            self.hostile += 1
            self.worst_hostile = max(self.worst_hostile, seconds)
            if seconds > HOSTILE_TIMEOUT + 1.0:
                self.hostile_late += 1


def good_request(port, keepalive_conn=None, close=False):
    method, path, body, check = random.choice(GOOD)
    conn = keepalive_conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close"} if close else {})
        r = conn.getresponse()
        data = r.read()
        ok = r.status == 200 and check(data)
        return ok, f"{method} {path}: {r.status} {data[:60]!r}", conn
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        return False, f"{method} {path}: {e!r}", None


def hostile_request(port, path):
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        try:
            r.read()
        except http.client.IncompleteRead:
            pass  # endless stdout: cut at the deadline, as designed
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()
    return time.monotonic() - start


def children_rss_mib(server):
    total = 0
    for pid in server.children():
        try:
            total += vm_kib(pid, "VmRSS")
        except (OSError, KeyError):
            pass
    return total / 1024


def storm(server, seconds, concurrency):
    stats = Stats()
    deadline = time.monotonic() + seconds

    def worker(n):
        conn = None
        rnd = random.Random(n)
        while time.monotonic() < deadline:
            if rnd.random() < 0.15:
                stats.add_hostile(hostile_request(server.port, rnd.choice(HOSTILE)))
            else:
                ok, why, conn = good_request(server.port, conn)
                # A keep-alive connection the server closed is retried once, as clients do.
                if not ok and conn is None:
                    ok, why, conn = good_request(server.port)
                stats.add_good(ok, why)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def soak(server, total, concurrency):
    done = [0]
    lock = threading.Lock()
    marks = {}
    failed = [0]

    def worker():
        conn = None
        while True:
            with lock:
                if done[0] >= total:
                    return
                done[0] += 1
                n = done[0]
            ok, _, conn = good_request(server.port, conn)
            if not ok:
                with lock:
                    failed[0] += 1
            if n in (10_000, total):
                marks[n] = children_rss_mib(server)

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return marks, failed[0], total / (time.monotonic() - start)


def graceful(server, app, concurrency):
    stop = threading.Event()
    stats = Stats()

    def worker():
        while not stop.is_set():
            ok, why, _ = good_request(server.port, close=True)
            stats.add_good(ok, why)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    time.sleep(3)
    shutil.copy(guest("probe"), app)  # the new program: prints its arguments
    os.chmod(app, 0o644)
    os.kill(server.pid, signal.SIGUSR1)  # apachectl graceful
    served_new = False
    for _ in range(200):
        time.sleep(0.1)
        try:
            status, _, body = server.get("/app")
            if status == 200 and body.startswith(b"arg0=app.wasm"):
                served_new = True
                break
        except OSError:
            pass
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    return stats, served_new


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--requests", type=int, default=100_000)
    args = ap.parse_args()

    server = Apache("", mpm_settings=MPM, log_level="warn")
    app = server.dir / "app.wasm"
    shutil.copy(guest("hello"), app)
    os.chmod(app, 0o644)
    server.conf.write_text(server.conf.read_text() + config(app))
    verdicts = []
    with server:
        print(f"httpd pid {server.pid}, port {server.port}, {os.cpu_count()} cores")
        s = storm(server, args.seconds, args.concurrency)
        crashes = server.error_log().count("exit signal")
        print(f"\n1. storm, c={args.concurrency}, {args.seconds}s:")
        print(f"   well-behaved: {s.good_ok} ok, {s.good_failed} failed")
        print(f"   hostile: {s.hostile} answered, worst {s.worst_hostile:.2f}s, "
              f"{s.hostile_late} later than deadline+1s ({HOSTILE_TIMEOUT + 1:.0f}s)")
        print(f"   children crashed: {crashes}")
        for f in s.failures:
            print(f"   failure: {f}")
        verdicts += [s.good_failed == 0, s.hostile_late == 0, crashes == 0]

        marks, failed, rps = soak(server, args.requests, args.concurrency)
        first, last = marks.get(10_000, 0), marks.get(args.requests, 0)
        print(f"\n2. soak, {args.requests} requests at {rps:.0f}/s, {failed} failed:")
        print(f"   children RSS at 10k: {first:.0f} MiB, at {args.requests // 1000}k: {last:.0f} MiB "
              f"(growth {last - first:+.0f} MiB)")
        verdicts += [failed == 0, last - first < 64]

        g, served_new = graceful(server, app, 16)
        print(f"\n3. graceful restart under load (c=16), .wasm replaced:")
        print(f"   {g.good_ok} ok, {g.good_failed} failed; new program served: {served_new}")
        for f in g.failures:
            print(f"   failure: {f}")
        verdicts += [g.good_failed == 0, served_new]
        crashes = server.error_log().count("exit signal")
        print(f"\nchildren crashed over the whole run: {crashes}")
        verdicts.append(crashes == 0)
    print("\nPASS" if all(verdicts) else "\nFAIL")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
