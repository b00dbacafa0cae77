"""A bad configuration stops `apache2 -t` (and startup) with the file, the line and why."""

import os
import re

import pytest

from harness import Apache, guest, refused_at_startup


def in_location(*directives):
    return "<Location /x>\n    SetHandler wasm-handler\n    " + "\n    ".join(directives) + "\n</Location>\n"


def test_missing_module():
    line, out = refused_at_startup(in_location("WasmModule /nonexistent/app.wasm"))
    assert line == "WasmModule /nonexistent/app.wasm"
    assert "WasmModule: cannot read /nonexistent/app.wasm: No such file or directory" in out


def test_not_a_wasm_file():
    line, out = refused_at_startup(in_location("WasmModule {root}/httpd.conf"))
    assert line.startswith("WasmModule ")
    assert "is not a WebAssembly file" in out


def test_corrupt_wasm_file():
    def write_corrupt(apache):
        data = guest("hello").read_bytes()
        (apache.dir / "broken.wasm").write_bytes(data[: len(data) // 2])
    line, out = refused_at_startup(in_location("WasmModule {root}/broken.wasm"), prepare=write_corrupt)
    assert line.startswith("WasmModule ") and line.endswith("/broken.wasm")
    assert "is not valid WebAssembly" in out


def test_relative_module_path_resolves_against_server_root():
    line, out = refused_at_startup(in_location("WasmModule missing.wasm"))
    assert re.search(r"cannot read /tmp/mod_wasm_test_\w+/missing.wasm", out), out


def test_component_that_is_neither_a_command_nor_a_wasi_http_component():
    kinds = "a handler exports wasi:cli/run (a WASI command) or wasi:http/incoming-handler (a wasi:http component)"
    line, out = refused_at_startup(in_location(f"WasmModule {guest('reactor', 'wasm32-wasip2')}"))
    assert f"this component exports nothing; {kinds}" in out, out
    # What it does export is named: here an extension module's phases.
    line, out = refused_at_startup(in_location(f"WasmModule {guest('ext_probe', 'wasm32-wasip2')}"))
    assert "this component exports apache:httpd/" in out and kinds in out, out


def test_unknown_entry_point():
    line, out = refused_at_startup(in_location(f"WasmModule {guest('hello')}", "WasmEntryPoint no_such_function"))
    assert line == "WasmEntryPoint no_such_function"
    assert "exports no function `no_such_function`" in out and "_start" in out


def test_entry_point_before_module_is_checked_too():
    line, out = refused_at_startup(in_location("WasmEntryPoint nope", f"WasmModule {guest('hello')}"))
    assert line.startswith("WasmModule ")
    assert "exports no function `nope`" in out


def test_entry_point_on_a_component():
    line, out = refused_at_startup(in_location(f"WasmModule {guest('hello', 'wasm32-wasip2')}", "WasmEntryPoint run"))
    assert "WasmEntryPoint applies to core modules" in out


def test_map_dir_to_a_missing_directory():
    line, out = refused_at_startup(in_location(f"WasmModule {guest('hello')}", "WasmMapDir /data /nonexistent/data"))
    assert line == "WasmMapDir /data /nonexistent/data"
    assert "WasmMapDir: cannot use directory /nonexistent/data: No such file or directory" in out


def test_wasm_dir_that_is_a_file():
    line, out = refused_at_startup(in_location(f"WasmModule {guest('hello')}", "WasmDir {root}/httpd.conf"))
    assert "is not a directory" in out


def test_bad_environment_variable_name():
    line, out = refused_at_startup(in_location(f"WasmModule {guest('hello')}", "WasmEnv A=B c"))
    assert "`A=B` is not a valid environment variable name" in out


@pytest.mark.parametrize("directive", ["WasmEnableCGI maybe", "WasmMapCGIFileNames yes"])
def test_on_off_directives_take_on_or_off(directive):
    line, out = refused_at_startup(in_location(f"WasmModule {guest('hello')}", directive))
    assert line == directive and "must be On or Off" in out


@pytest.mark.parametrize("directive", ["WasmModule", "WasmMapDir /only-one", "WasmEnv ONLY_NAME"])
def test_wrong_number_of_arguments(directive):
    line, _ = refused_at_startup(in_location(directive))
    assert line == directive


def test_a_good_configuration_passes():
    apache = Apache(in_location(f"WasmModule {guest('hello')}", "WasmEnableCGI On"))
    code, out = apache.check_config()
    assert code == 0 and "Syntax OK" in out


def test_module_that_validates_but_cannot_be_compiled_names_the_cause():
    """Valid WebAssembly (so `apache2 -t` accepts it) whose table starts with 200,000
    elements, more than an instance slot may hold: startup stops naming the module and
    wasmtime's reason, not an address-space limit."""
    start_type = bytes([0x01, 0x04, 0x01, 0x60, 0x00, 0x00])
    one_function = bytes([0x03, 0x02, 0x01, 0x00])
    table_of_200000 = bytes([0x04, 0x06, 0x01, 0x70, 0x00, 0xC0, 0x9A, 0x0C])
    export_start = bytes([0x07, 0x0A, 0x01, 0x06]) + b"_start" + bytes([0x00, 0x00])
    empty_body = bytes([0x0A, 0x04, 0x01, 0x02, 0x00, 0x0B])
    wasm = b"\0asm\x01\0\0\0" + start_type + one_function + table_of_200000 + export_start + empty_body
    apache = Apache(in_location("WasmModule {root}/huge.wasm"))
    (apache.dir / "huge.wasm").write_bytes(wasm)
    os.chmod(apache.dir / "huge.wasm", 0o644)
    code, out = apache.check_config()
    assert code == 0, out
    try:
        with pytest.raises(RuntimeError) as failed:
            apache.start()
    finally:
        apache.stop()  # only if it started after all
    text = str(failed.value)
    assert f"{apache.dir}/huge.wasm: cannot be compiled:" in text, text
    assert "table" in text and "ulimit" not in text, text
