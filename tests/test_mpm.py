"""Each MPM, with httpd started detached and forking as in production: the parent never
creates a wasmtime Engine, so traps in children come back as clean 500s (docs/architecture.md, "Fork safety")."""

import pytest

from harness import Apache, guest, vm_kib as vm_field


@pytest.mark.parametrize("mpm", ["event", "worker", "prefork"])
def test_mpm(mpm):
    body = f"""
<Location /p1>
    SetHandler wasm-handler
    WasmModule {guest('hello')}
</Location>
<Location /p2>
    SetHandler wasm-handler
    WasmModule {guest('hello', 'wasm32-wasip2')}
</Location>
<Location /cgi>
    SetHandler wasm-handler
    WasmModule {guest('probe')}
    WasmEnableCGI On
</Location>
"""
    with Apache(body, mpm=mpm) as server:
        for _ in range(5):
            assert server.get("/p1")[2] == b"Hello from WebAssembly!\n"
            assert server.get("/p2")[2] == b"Hello from WebAssembly!\n"
            assert server.get("/cgi?do=trap")[0] == 500
        assert server.get("/cgi?do=status&v=202")[0] == 202
        log = server.error_log()
        assert "exit signal" not in log, log
        assert log.count("wasm `unreachable` instruction executed") == 5
        # The parent started no threads (no Engine, no compiler pool, no tokio runtime).
        assert vm_field(server.pid, "Threads") == 1
