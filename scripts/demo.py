"""Starts (or stops) a demo httpd on 127.0.0.1 serving the example guests.

    python3 scripts/demo.py start [PORT]    (default 8080)
    python3 scripts/demo.py stop
"""

import os
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness import Apache, guest  # noqa: E402  (the test harness writes the config)

DEMO_DIR = Path(os.environ.get("DEMO_DIR", "/tmp/mod_wasm-demo"))

INDEX = """<!DOCTYPE html>
<html><head><title>mod_wasm demo</title></head><body>
<h1>mod_wasm demo</h1>
<ul>
<li><a href="/hello">/hello</a>: a WASI preview1 module, stdout is the response</li>
<li><a href="/hello-p2">/hello-p2</a>: the same program as a preview2 component</li>
<li><a href="/viewer/some/path?a=1">/viewer</a>: the CGI request a program receives</li>
<li><a href="/files/">/files/</a>: a file lister over a WasmMapDir directory</li>
<li>/echo: returns the request body:
    <code>curl --data-binary @file http://127.0.0.1:PORT/echo</code></li>
</ul>
<h2>Extension modules</h2>
<ul>
<li>every response: <code>X-Request-Id</code> (request_id.wasm) and
    <code>X-Frame-Options</code> (add_headers.wasm); a JSON access log line in error.log</li>
<li><a href="/api/items/7?a=1">/api/items/7?a=1</a>: a JSON API in the handler phase</li>
<li><a href="/admin/">/admin/</a>: 401 unless <code>Authorization: Bearer s3cret</code></li>
</ul></body></html>
"""


def config():
    def loc(path, module, *lines, target="wasm32-wasip1"):
        body = "\n    ".join(lines)
        return (f"<Location {path}>\n    SetHandler wasm-handler\n"
                f"    WasmModule {DEMO_DIR}/wasm/{target}/{module}.wasm\n    {body}\n</Location>\n")
    return "".join([
        loc("/hello", "hello"),
        loc("/hello-p2", "hello", target="wasm32-wasip2"),
        loc("/viewer", "request-viewer", "WasmEnableCGI On", "WasmArg --demo"),
        loc("/files", "file-lister", "WasmEnableCGI On", f"WasmMapDir /data {DEMO_DIR}/files", "WasmArg /data"),
        loc("/echo", "echo", "WasmEnableCGI On"),
        f"WasmApacheModule {DEMO_DIR}/wasm/wasm32-wasip2/request_id.wasm\n",
        f"WasmApacheModule {DEMO_DIR}/wasm/wasm32-wasip2/json_logger.wasm\n",
        f'WasmApacheModule {DEMO_DIR}/wasm/wasm32-wasip2/add_headers.wasm "set X-Frame-Options DENY"\n',
        f"<Location /api>\n    SetHandler json-api\n"
        f"    WasmApacheModule {DEMO_DIR}/wasm/wasm32-wasip2/json_api.wasm\n</Location>\n",
        f"<Location /admin>\n    WasmApacheModule {DEMO_DIR}/wasm/wasm32-wasip2/access_control.wasm"
        f' "token s3cret"\n</Location>\n',
    ])


def start(port):
    stop(quiet=True)
    # Children read modules as www-data: serve copies from the demo directory.
    for target in ("wasm32-wasip1", "wasm32-wasip2"):
        (DEMO_DIR / "wasm" / target).mkdir(parents=True, exist_ok=True)
        for name in ("hello", "request-viewer", "file-lister", "echo"):
            shutil.copy(guest(name, target), DEMO_DIR / "wasm" / target / f"{name}.wasm")
    for name in ("request_id", "json_logger", "add_headers", "json_api", "access_control"):
        shutil.copy(guest(name, "wasm32-wasip2"), DEMO_DIR / "wasm" / "wasm32-wasip2" / f"{name}.wasm")
    files = DEMO_DIR / "files"
    (files / "docs").mkdir(parents=True, exist_ok=True)
    (files / "readme.txt").write_text("Served by a WebAssembly program through WasmMapDir.\n")
    (files / "docs" / "notes.md").write_text("# Notes\n")
    for p in [DEMO_DIR, *DEMO_DIR.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    apache = Apache(config(), port=port, directory=DEMO_DIR, log_level="info", extra_modules=["dir"])
    (DEMO_DIR / "htdocs" / "index.html").write_text(INDEX.replace("PORT", str(port)))
    apache.start()
    print(f"mod_wasm demo: http://127.0.0.1:{port}/  (pid {apache.pid})")
    print(f"  config {apache.conf}\n  log    {DEMO_DIR}/error.log")
    print("  stop:  python3 scripts/demo.py stop")


def stop(quiet=False):
    pidfile = DEMO_DIR / "httpd.pid"
    if not pidfile.exists():
        if not quiet:
            print("no demo server running")
        return
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return
    deadline = time.time() + 30
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:
        time.sleep(0.05)
    if not quiet:
        print(f"stopped the demo server (pid {pid})")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        start(int(sys.argv[2]) if len(sys.argv) > 2 else int(os.environ.get("PORT", 8080)))
    elif command == "stop":
        stop()
    else:
        sys.exit(__doc__)
