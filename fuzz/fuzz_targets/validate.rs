//! Startup validation of arbitrary bytes (httpd's parent runs it on every configured file):
//! it answers, never panics, and what it accepts has a kind and consistent facts.
#![no_main]

use host::phase::exported_phases;
use host::validate::{check_bytes, check_component_imports, WasmKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = check_bytes("fuzz.wasm", data) {
        assert!(data.starts_with(b"\0asm"));
        if info.kind == WasmKind::CoreModule {
            assert!(info.imports.is_empty());
        }
        let _ = exported_phases(&info.exports);
        let _ = check_component_imports("fuzz.wasm", &info, &["apache:httpd/types@0.1."]);
    }
});
