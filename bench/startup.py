"""Start-up time with a large module, with and without the compiled-code cache
(docs/benchmarks.md).

Generates a valid ~20 MB core module (many large functions, like an interpreter), then
times `apache2 -k start` until the first response from it: cold (empty WasmCacheDir), warm
(a restart that finds the cache), and with `WasmCacheDir Off`. With `--extension`, the
module is that extension component instead (a Python one, say: `make python-guests` builds
build/guests/wasm32-wasip2/python_add_headers.wasm), loaded with `WasmApacheModule` in front
of a static file.

    python3 bench/startup.py [--megabytes 20 | --extension COMPONENT]
"""

import argparse
import http.client
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import APACHE2, Apache  # noqa: E402


def leb(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def section(code, payload):
    return bytes([code]) + leb(len(payload)) + payload


def big_module(megabytes):
    """N functions `() -> i32` summing constants, and an empty `_start`."""
    adds = 3000
    body = b"\x00" + b"\x41\x00" + b"\x41\x01\x6a" * adds + b"\x0b"  # no locals; 0 (+1)*adds
    count = max(1, megabytes * 1_000_000 // len(body))
    types = section(1, leb(2) + b"\x60\x00\x01\x7f" + b"\x60\x00\x00")
    funcs = section(3, leb(count + 1) + b"\x00" * count + b"\x01")
    exports = section(7, leb(1) + leb(6) + b"_start" + b"\x00" + leb(count))
    bodies = b"".join(leb(len(body)) + body for _ in range(count)) + leb(2) + b"\x00\x0b"
    code = section(10, leb(count + 1) + bodies)
    return b"\x00asm\x01\x00\x00\x00" + types + funcs + exports + code


def first_response(apache, header=None):
    """Starts httpd and returns the seconds until /big answers (with `header`, which the
    module sets: a response that does not carry it did not come through the module)."""
    start = time.monotonic()
    subprocess.run([APACHE2, "-f", str(apache.conf), "-k", "start"], check=True)
    while time.monotonic() - start < 600:
        c = http.client.HTTPConnection("127.0.0.1", apache.port, timeout=120)
        try:
            c.request("GET", "/big")
            response = c.getresponse()
            response.read()
            if response.status == 200:
                apache.pid = int((apache.dir / "httpd.pid").read_text())
                if header is not None and response.getheader(header) != "wasm":
                    apache.stop()
                    raise RuntimeError(f"/big answered without {header}: the module did not run\n"
                                       + apache.error_log())
                return time.monotonic() - start
        except OSError:
            pass
        finally:
            c.close()
        time.sleep(0.02)
    raise RuntimeError(apache.error_log())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megabytes", type=int, default=20)
    ap.add_argument("--extension", type=Path, help="an extension component to time instead (its config string "
                    "is 'set X-Served-By-Module wasm', which the add-headers examples understand)")
    args = ap.parse_args()
    if args.extension:
        module = args.extension.read_bytes()
        location = ("<Location /big>\n    WasmApacheModule {root}/big.wasm \"set X-Served-By-Module wasm\"\n"
                    "</Location>\n")
    else:
        module = big_module(args.megabytes)
        location = "<Location /big>\n    SetHandler wasm-handler\n    WasmModule {root}/big.wasm\n</Location>\n"
    results = {}
    for label, cache in [("cold cache", ""), ("warm cache (restart)", ""), ("WasmCacheDir Off", "WasmCacheDir Off\n")]:
        if label != "warm cache (restart)":
            apache = Apache(cache + location, log_level="error")
            (apache.dir / "big.wasm").write_bytes(module)
            os.chmod(apache.dir / "big.wasm", 0o644)
            if args.extension:
                apache.add_files({"big": "a static file behind the extension module\n"})
        results[label] = first_response(apache, "X-Served-By-Module" if args.extension else None)
        apache.stop()
    print(f"module: {len(module) / 1e6:.1f} MB; 2 children (mpm_event)")
    print("\n| start | seconds to the first response |\n|---|---:|")
    for label, seconds in results.items():
        print(f"| {label} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
