//! Generates the Rust bindings to httpd/APR (bindgen) and the C header for mod_wasm.c
//! (cbindgen). Include directories come from `apxs` and `apr-1-config`, as for any module.

use std::path::PathBuf;
use std::process::Command;

fn query(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd} (install apache2-dev): {e}"));
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8 output").trim().to_owned()
}

fn main() {
    println!("cargo:rerun-if-changed=src/httpd_api.h");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=APXS");
    let apxs = std::env::var("APXS").unwrap_or_else(|_| "apxs".into());
    let httpd_include = query(&apxs, &["-q", "INCLUDEDIR"]);
    let apr_includes = query("apr-1-config", &["--includes"]);

    let mut builder = bindgen::Builder::default()
        .header("src/httpd_api.h")
        .clang_arg(format!("-I{httpd_include}"))
        .allowlist_function("ap_.*|apr_.*")
        .allowlist_type("request_rec|cmd_parms|server_rec|module|process_rec|ap_directive_t|apr_table_entry_t|apr_array_header_t|authz_provider|authz_status|ap_socache_provider_t|ap_socache_hints")
        .prepend_enum_name(false)
        .allowlist_var("AP_.*|APR_.*|HTTP_.*|OK|DECLINED|DONE|M_GET|APLOG_.*|REQUEST_CHUNKED_DECHUNK|HUGE_STRING_LEN|GLOBAL_ONLY|ap_unixd_config|apr_bucket_type_(eos|flush)|ap_bucket_type_error|apr_hook_debug_current")
        .derive_default(false)
        .layout_tests(false)
        .generate_comments(false);
    for inc in apr_includes.split_whitespace() {
        builder = builder.clang_arg(inc);
    }
    let bindings = builder.generate().expect("bindgen over httpd headers");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    bindings.write_to_file(out.join("httpd_bindings.rs")).expect("write bindings");

    // The header is committed (CI checks it is up to date); rewrite it only when it changes.
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let header = PathBuf::from(&crate_dir).join("include/mod_wasm_ffi.h");
    let generated = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(cbindgen::Config::from_file(PathBuf::from(&crate_dir).join("cbindgen.toml")).unwrap())
        .generate()
        .expect("cbindgen");
    let mut text = Vec::new();
    generated.write(&mut text);
    if std::fs::read(&header).ok().as_deref() != Some(&text[..]) {
        std::fs::write(&header, text).expect("write include/mod_wasm_ffi.h");
    }
}
