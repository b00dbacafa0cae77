//! Checks a `.wasm` file without a wasmtime Engine, so that it can run in httpd's parent
//! process (docs/architecture.md, "Fork safety"): the bytes must be valid WebAssembly and everything
//! the program imports must be something this host provides.

use std::path::Path;

use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// The import module every WASI preview1 function lives in.
const WASI_P1_MODULE: &str = "wasi_snapshot_preview1";

/// Every function wasmtime-wasi provides for preview1 modules.
const WASI_P1_FUNCTIONS: &[&str] = &[
    "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get",
    "clock_time_get", "fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get",
    "fd_fdstat_set_flags", "fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size",
    "fd_filestat_set_times", "fd_pread", "fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite",
    "fd_read", "fd_readdir", "fd_renumber", "fd_seek", "fd_sync", "fd_tell", "fd_write",
    "path_create_directory", "path_filestat_get", "path_filestat_set_times", "path_link",
    "path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
    "path_unlink_file", "poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get",
    "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
];

/// The interface a WASI preview2 command component exports.
const WASI_CLI_RUN: &str = "wasi:cli/run@0.2.";

/// The interface a wasi:http component exports (any 0.2 version).
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.";

/// The WASI preview2 packages wasmtime-wasi provides to components.
const WASI_P2_PACKAGES: &[&str] =
    &["wasi:cli/", "wasi:clocks/", "wasi:filesystem/", "wasi:io/", "wasi:random/", "wasi:sockets/"];

/// What a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmKind {
    /// A core module (wasm32-wasip1).
    CoreModule,
    /// A component (wasm32-wasip2).
    Component,
}

/// The facts about a valid file that the configuration checks need.
#[derive(Clone, Debug)]
pub struct WasmInfo {
    pub kind: WasmKind,
    /// Core module: exported function names. Component: exported names (interfaces, functions).
    pub exports: Vec<String>,
    /// Component: imported names (interfaces, functions).
    pub imports: Vec<String>,
}

impl WasmInfo {
    pub fn exports(&self, name: &str) -> bool {
        self.exports.iter().any(|e| e == name)
    }

    /// A component that exports `wasi:cli/run` (a WASI command).
    pub fn is_command(&self) -> bool {
        self.kind == WasmKind::Component && self.exports.iter().any(|e| e.starts_with(WASI_CLI_RUN))
    }

    /// A component that exports `wasi:http/incoming-handler` (the `wasi:http/proxy` world).
    pub fn is_http_proxy(&self) -> bool {
        self.kind == WasmKind::Component && self.exports.iter().any(|e| e.starts_with(INCOMING_HANDLER))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a WebAssembly file (it does not start with the \\0asm magic bytes)")]
    NotWasm { path: String },
    #[error("{path} is not valid WebAssembly: {message}")]
    Invalid { path: String, message: String },
    #[error("{path} imports `{import}`, which mod_wasm does not provide ({hint})")]
    UnknownImport { path: String, import: String, hint: &'static str },
}

/// Reads and checks a file; see [`check_bytes`].
pub fn check_file(path: &Path) -> Result<WasmInfo, ValidateError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ValidateError::Read { path: shown.clone(), source })?;
    check_bytes(&shown, &bytes)
}

/// Validates `bytes` completely and checks that every import is one this host provides.
pub fn check_bytes(path: &str, bytes: &[u8]) -> Result<WasmInfo, ValidateError> {
    let invalid = |e: wasmparser::BinaryReaderError| ValidateError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let kind = if Parser::is_core_wasm(bytes) {
        WasmKind::CoreModule
    } else if Parser::is_component(bytes) {
        WasmKind::Component
    } else {
        return Err(ValidateError::NotWasm { path: path.to_owned() });
    };
    Validator::new_with_features(WasmFeatures::default()).validate_all(bytes).map_err(invalid)?;

    let mut info = WasmInfo { kind, exports: Vec::new(), imports: Vec::new() };
    // Nested modules and components also produce payloads; only the outermost level counts.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(invalid)? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ImportSection(reader) if depth == 1 => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    if import.module != WASI_P1_MODULE || !WASI_P1_FUNCTIONS.contains(&import.name) {
                        return Err(ValidateError::UnknownImport {
                            path: path.to_owned(),
                            import: format!("{}::{}", import.module, import.name),
                            hint: "a core module may import only WASI preview1 functions",
                        });
                    }
                }
            }
            Payload::ExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        info.exports.push(export.name.to_owned());
                    }
                }
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    info.imports.push(import.map_err(invalid)?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    info.exports.push(export.map_err(invalid)?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Checks that a component imports only the WASI preview2 interfaces wasmtime-wasi provides,
/// plus the interfaces whose names start with one of `extra_packages`.
pub fn check_component_imports(
    path: &str,
    info: &WasmInfo,
    extra_packages: &[&str],
) -> Result<(), ValidateError> {
    for import in &info.imports {
        let wasi = WASI_P2_PACKAGES.iter().any(|p| import.starts_with(p)) && import.contains("@0.2.");
        let known = wasi || extra_packages.iter().any(|p| import.starts_with(p));
        if !known {
            return Err(ValidateError::UnknownImport {
                path: path.to_owned(),
                import: import.clone(),
                hint: "a component may import WASI 0.2 interfaces (cli, clocks, filesystem, io, random, sockets) and, as a WasmApacheModule, apache:httpd/types",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(src: &str) -> Vec<u8> {
        wat::parse_str(src).expect("test WAT parses")
    }

    #[test]
    fn core_module_exports_and_kind() {
        let bytes = wat(r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#);
        let info = check_bytes("t.wasm", &bytes).unwrap();
        assert_eq!(info.kind, WasmKind::CoreModule);
        assert!(info.exports("_start"));
        assert!(!info.exports("memory"), "only functions count as entry points");
        assert!(!info.is_command());
    }

    #[test]
    fn rejects_non_wasm_with_path() {
        let err = check_bytes("/x/readme.txt", b"hello world").unwrap_err();
        assert!(err.to_string().contains("/x/readme.txt is not a WebAssembly file"), "{err}");
    }

    #[test]
    fn rejects_invalid_body() {
        let mut bytes = wat(r#"(module (func (export "_start")))"#);
        bytes.truncate(bytes.len() - 2);
        let err = check_bytes("t.wasm", &bytes).unwrap_err();
        assert!(matches!(err, ValidateError::Invalid { .. }), "{err}");
    }

    #[test]
    fn rejects_foreign_imports() {
        let bytes = wat(r#"(module (import "env" "emscripten_thing" (func)))"#);
        let err = check_bytes("t.wasm", &bytes).unwrap_err();
        assert!(err.to_string().contains("env::emscripten_thing"), "{err}");
        let bytes = wat(r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)))"#);
        assert!(check_bytes("t.wasm", &bytes).is_err());
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = check_file(Path::new("/nonexistent/app.wasm")).unwrap_err();
        assert!(err.to_string().starts_with("cannot read /nonexistent/app.wasm"), "{err}");
    }

    #[test]
    fn component_import_rules() {
        let info = WasmInfo {
            kind: WasmKind::Component,
            exports: vec!["wasi:cli/run@0.2.3".into()],
            imports: vec!["wasi:io/streams@0.2.3".into(), "wasi:http/types@0.2.3".into()],
        };
        assert!(info.is_command());
        let err = check_component_imports("c.wasm", &info, &[]).unwrap_err();
        assert!(err.to_string().contains("wasi:http/types@0.2.3"), "{err}");
        let ok = WasmInfo { imports: vec!["wasi:io/streams@0.2.3".into()], ..info };
        check_component_imports("c.wasm", &ok, &[]).unwrap();
    }
}
