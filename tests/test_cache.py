"""WasmCacheDir: compiled code kept between starts, filled before the children start."""

from harness import Apache, guest

HELLO = f"<Location /x>\n    SetHandler wasm-handler\n    WasmModule {guest('hello')}\n</Location>\n"


def entries(directory):
    """Compiled-code entries (wasmtime's cache also keeps .stats files and .wip temporaries)."""
    return sorted(p.name for p in directory.rglob("*") if p.is_file() and "." not in p.name)


def test_default_cache_is_under_the_runtime_dir_and_reused():
    apache = Apache(HELLO)
    try:
        apache.start()
        assert apache.get("/x")[2] == b"Hello from WebAssembly!\n"
        cache = apache.dir / "mod_wasm-cache"
        first = entries(cache)
        assert len(first) == 1, first  # one module, compiled once for every child
        assert cache.stat().st_uid == 33, "children (www-data) may add entries"
        apache.stop()
        apache.start()  # a restart finds the compiled module: same entry, nothing new
        assert apache.get("/x")[2] == b"Hello from WebAssembly!\n"
        assert entries(cache) == first
    finally:
        apache.stop()


def test_cache_dir_can_be_chosen_or_turned_off():
    apache = Apache("WasmCacheDir {root}/compiled\n" + HELLO)
    with apache:
        assert apache.get("/x")[0] == 200
        assert len(entries(apache.dir / "compiled")) == 1
    apache = Apache("WasmCacheDir Off\n" + HELLO)
    with apache:
        assert apache.get("/x")[0] == 200
        assert not (apache.dir / "mod_wasm-cache").exists()


def test_cache_dir_is_server_wide():
    apache = Apache(f"<VirtualHost 127.0.0.1:{{port}}>\n    WasmCacheDir /tmp/x\n</VirtualHost>\n")
    code, out = apache.check_config()
    assert code != 0 and "WasmCacheDir cannot occur within <VirtualHost> section" in out, out
