"""A real apache2 with mod_wasm loaded, on a free 127.0.0.1 port.

Each server gets its own directory (config, logs, pid file, document root), starts detached
and forking exactly as in production (`apache2 -k start`), and is stopped by the pid it
wrote. Nothing under /etc/apache2 is read or touched.
"""

import atexit
import base64
import hashlib
import http.client
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"
# MOD_WASM_MODULE runs the tests against another build of the module (an older one, say).
MODULE = Path(os.environ.get("MOD_WASM_MODULE", BUILD / "mod_wasm.so"))
HTTPD_MODULES = Path("/usr/lib/apache2/modules")
APACHE2 = shutil.which("apache2") or "/usr/sbin/apache2"


_guest_copies = None


def guest(name, target="wasm32-wasip1"):
    """Path of a built guest (`make guests`). httpd's children read modules as www-data, so
    the tests use copies in a world-readable directory (a checkout may not be)."""
    global _guest_copies
    if _guest_copies is None:
        built = BUILD / "guests"
        assert built.is_dir(), f"{built} missing: run `make guests`"
        _guest_copies = Path(tempfile.mkdtemp(prefix="mod_wasm_guests_"))
        atexit.register(shutil.rmtree, _guest_copies, True)
        shutil.copytree(built, _guest_copies, dirs_exist_ok=True)
        for d in [_guest_copies, *_guest_copies.rglob("*")]:
            os.chmod(d, 0o755 if d.is_dir() else 0o644)
    path = _guest_copies / target / f"{name}.wasm"
    assert path.exists(), f"{path} missing: run `make guests`"
    return path


def location(path, module, *directives, target="wasm32-wasip1"):
    """A `<Location>` running a built guest as the content handler, with more directives."""
    lines = "\n    ".join(directives)
    return f"""
<Location {path}>
    SetHandler wasm-handler
    WasmModule {guest(module, target)}
    {lines}
</Location>
"""


def section(path, *lines):
    """A bare `<Location>` with `lines` in it."""
    body = "\n    ".join(lines)
    return f"<Location {path}>\n    {body}\n</Location>\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MPM_SETTINGS = {
    "event": "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\n"
             "MinSpareThreads 1\nMaxSpareThreads 16\n",
    "worker": "StartServers 1\nServerLimit 2\nThreadsPerChild 8\nMaxRequestWorkers 16\n"
              "MinSpareThreads 1\nMaxSpareThreads 16\n",
    "prefork": "StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\nMaxRequestWorkers 8\n",
}


class Apache:
    """One httpd instance. `body` is configuration appended after the base config; in it,
    `{root}` is the server's directory and `{port}` its port."""

    def __init__(self, body, mpm="event", extra_modules=(), log_level="warn wasm:debug",
                 port=None, directory=None, mpm_settings=None):
        if directory:
            self.dir = Path(directory)
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            self.dir = Path(tempfile.mkdtemp(prefix="mod_wasm_test_"))
        os.chmod(self.dir, 0o755)
        (self.dir / "htdocs").mkdir(exist_ok=True)
        self.port = port or free_port()
        self.mpm = mpm
        self.pid = None
        modules = ["mpm_" + mpm, "authz_core", "mime"] + list(extra_modules)
        loads = "\n".join(f"LoadModule {m}_module {HTTPD_MODULES}/mod_{m}.so" for m in modules)
        self.conf = self.dir / "httpd.conf"
        self.conf.write_text(
            f"""ServerRoot {self.dir}
{loads}
LoadModule wasm_module {MODULE}
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile {self.dir}/httpd.pid
DefaultRuntimeDir {self.dir}
ErrorLog {self.dir}/error.log
LogLevel {log_level}
User www-data
Group www-data
DocumentRoot {self.dir}/htdocs
TypesConfig /etc/mime.types
KeepAlive On
Timeout 30
{mpm_settings or MPM_SETTINGS[mpm]}
<Directory />
    Require all granted
</Directory>
"""
            + body.replace("{root}", str(self.dir)).replace("{port}", str(self.port))
            + "\n"
        )

    def add_files(self, files, under="htdocs"):
        """Writes `files` ({path relative to `under`: text or bytes}) into the server's
        directory and makes the whole tree readable by the children's user."""
        for rel, content in files.items():
            path = self.dir / under / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        self.make_readable()
        return self

    def make_readable(self):
        """httpd's children run as www-data: directories and `.cgi` programs 755, the rest 644."""
        for p in [self.dir, *self.dir.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() or p.suffix == ".cgi" else 0o644)

    # -- lifecycle ----------------------------------------------------------------------

    def check_config(self):
        """`apache2 -t`: (exit code, combined output)."""
        p = subprocess.run([APACHE2, "-t", "-f", str(self.conf)], capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr

    def start(self, timeout=60):
        p = subprocess.run([APACHE2, "-f", str(self.conf), "-k", "start"], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"apache2 failed to start: {p.stdout}{p.stderr}\n{self.error_log()}")
        pidfile = self.dir / "httpd.pid"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pidfile.exists() and pidfile.read_text().strip():
                self.pid = int(pidfile.read_text().strip())
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"no pid file after {timeout}s\n{self.error_log()}")
        # Ready when a request gets an answer (children build their runtime in child_init).
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/__mod_wasm_test_ready__")
                c.getresponse().read()
                c.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not answer within {timeout}s\n{self.error_log()}")

    def stop(self):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            self.pid = None
            return
        deadline = time.time() + 30
        while time.time() < deadline and Path(f"/proc/{self.pid}").exists():
            time.sleep(0.05)
        if Path(f"/proc/{self.pid}").exists():
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None

    def graceful(self):
        os.kill(self.pid, signal.SIGUSR1)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if os.environ.get("KEEP_TEST_SERVERS") is None and exc[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- observation ----------------------------------------------------------------------

    def error_log(self):
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def children(self):
        """Pids of the server's child processes."""
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                kids.append(int(stat.parent.name))
        return kids

    def log_mark(self):
        """The error log's current size in bytes: pass it to `log_since` or `wait_log` to
        look only at what is written after this point."""
        path = self.dir / "error.log"
        return path.stat().st_size if path.exists() else 0

    def log_since(self, mark):
        """The error log text written since `log_mark()` returned `mark`."""
        path = self.dir / "error.log"
        if not path.exists():
            return ""
        with open(path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def wait_log(self, needle, timeout=10, since=0):
        """Waits until `needle` appears in the error log (it is written asynchronously),
        after byte offset `since` (a `log_mark()`; by default anywhere)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.log_since(since):
                return True
            time.sleep(0.05)
        return False

    # -- requests -----------------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, chunked=False, timeout=60):
        """(status, headers dict with lower-case names, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def duplex_request(self, method, path, body, headers=None, timeout=120):
        """Sends `body` from a second thread while reading the response, as curl and browsers
        do: a streaming guest may answer before the request body has fully arrived."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "Connection: close\r\n\r\n"
        sender = threading.Thread(target=sock.sendall, args=(head.encode() + body,))
        sender.start()
        try:
            r = http.client.HTTPResponse(sock, method=method)
            r.begin()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            sender.join()
            sock.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def raw_exchange(self, request, timeout=30):
        """Sends `request` (bytes, as they go on the wire) on a new connection and returns
        every byte the server sends until it closes the connection: to see exactly what went
        out (one response or two, a final chunk or none)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(request)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        return received

    def raw_get(self, path, timeout=30):
        """`raw_exchange` of a GET of `path` with `Connection: close`."""
        return self.raw_exchange(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(), timeout)

    def pipelined_get(self, paths, timeout=30):
        """Sends GETs for all `paths` in one write on one connection (HTTP/1.1 pipelining) and
        returns their (status, headers, body) in order."""
        last = len(paths) - 1
        wire = "".join(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"{'Connection: close' + chr(13) + chr(10) if i == last else ''}\r\n"
                       for i, p in enumerate(paths)).encode()
        # One buffer for every response: http.client reads ahead.
        stream = _SharedStream(self.raw_exchange(wire, timeout))
        answers = []
        for _ in paths:
            r = http.client.HTTPResponse(stream, method="GET")
            r.begin()
            answers.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()))
        return answers


class _SharedStream(io.BytesIO):
    """Received bytes that several http.client responses read in turn, as from a socket."""

    def makefile(self, *_args, **_kw):
        return self

    def close(self):
        pass


def refused_at_startup(body, extra_modules=(), prepare=None, directive=None):
    """`apache2 -t` refuses the configuration `body` (after `prepare(apache)`, if given) and
    names the file and line, as httpd does for a bad directive (a line that starts with
    `directive`, if given): (that line, stripped; the whole output)."""
    apache = Apache(body, extra_modules=list(extra_modules))
    try:
        if prepare:
            prepare(apache)
        code, out = apache.check_config()
        conf = apache.conf.read_text().splitlines()
    finally:
        shutil.rmtree(apache.dir, ignore_errors=True)
    assert code != 0, f"configuration was accepted:\n{out}"
    m = re.search(r"Syntax error on line (\d+) of (\S+):", out)
    assert m and m.group(2) == str(apache.conf), out
    line = conf[int(m.group(1)) - 1].strip()
    assert directive is None or line.startswith(directive), (line, out)
    return line, out


class Redis:
    """A real redis-server (Debian's) on a loopback port, started and stopped by pid, keeping
    nothing on disk."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mod_wasm_redis_"))
        self.proc = None

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--daemonize", "no", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def basic_users(apache, users):
    """An AuthUserFile `users` in the server's directory with `{user: password}` ({SHA}
    hashes, which httpd's apr checks); returns the `Authorization` header of each user."""
    lines = "".join(f"{u}:{{SHA}}{base64.b64encode(hashlib.sha1(p.encode()).digest()).decode()}\n" for u, p in users.items())
    (apache.dir / "users").write_text(lines)
    return {u: "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in users.items()}


def vm_kib(pid, field):
    """A number from /proc/PID/status: VmRSS/VmHWM in KiB, Threads as a count."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)
