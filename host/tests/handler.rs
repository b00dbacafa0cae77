//! The content handler against an in-memory request: stdio, CGI header handling, exit codes
//! and traps, without Apache. (tests/ at the repository root runs the real thing.)

use host::config::{DirConfig, ModuleRef};
use host::child;
use host::engine::ChildSettings;
use host::testing::MemoryRequest;
use host::{BodyError, Outcome};

/// Writes the module to a file, registers it and prepares it as a child would.
fn section(name: &str, wat: &str, cgi: bool) -> DirConfig {
    let dir = std::env::temp_dir().join(format!("mod_wasm_host_test_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    let slot = host::registry::register(&path, |_, _| Ok(())).unwrap();
    let failures = child::start(&ChildSettings { concurrent_requests: 2, cache_dir: None }).unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    DirConfig {
        module: Some(ModuleRef { slot, mount: None }),
        enable_cgi: Some(cgi),
        ..Default::default()
    }
}

const IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; write(fd, ptr, len) through an iovec at 0 and the result count at 8
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
"#;

/// A CGI program that writes a header block and then copies stdin to stdout.
fn echo_wat() -> String {
    format!(
        r#"(module {IMPORTS}
  (data (i32.const 100) "Content-Type: text/plain\r\nX-Echo: 1\r\n\r\n")
  (func (export "_start")
    (local $n i32)
    (call $write (i32.const 1) (i32.const 100) (i32.const 39))
    (block $done
      (loop $copy
        ;; read up to 7 bytes at 1000 (small, to exercise many reads)
        (i32.store (i32.const 16) (i32.const 1000))
        (i32.store (i32.const 20) (i32.const 7))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
        (local.set $n (i32.load (i32.const 24)))
        (br_if $done (i32.eqz (local.get $n)))
        (call $write (i32.const 1) (i32.const 1000) (local.get $n))
        (br $copy)))))"#
    )
}

#[test]
fn cgi_headers_then_streamed_body() {
    let cfg = section("echo", &echo_wat(), true);
    let req = MemoryRequest::with_body(b"the request body, read seven bytes at a time");
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Served);
    let s = req.state();
    assert_eq!(s.status, 200);
    assert!(s.headers.contains(&("X-Echo".into(), "1".into())));
    assert_eq!(s.body_out, b"the request body, read seven bytes at a time");
    assert!(s.finished);
    assert!(s.logs.is_empty(), "{:?}", s.logs);
}

#[test]
fn without_cgi_stdout_is_the_body() {
    let cfg = section("echo-raw", &echo_wat(), false);
    let req = MemoryRequest::with_body(b"xyz");
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Served);
    assert_eq!(req.state().body_out, b"Content-Type: text/plain\r\nX-Echo: 1\r\n\r\nxyz");
}

#[test]
fn body_read_error_before_output_answers_its_status() {
    let cfg = section("echo-limited", &echo_wat(), true);
    let req = MemoryRequest::default();
    req.state().body_error = Some(BodyError { status: 413, message: "too large".into() });
    // The header block came out before the read failed, but no body byte did.
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Served);
    let exit_first = format!(
        r#"(module {IMPORTS}
  (func (export "_start")
    (i32.store (i32.const 16) (i32.const 1000))
    (i32.store (i32.const 20) (i32.const 7))
    (if (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24))
      (then (call $proc_exit (i32.const 1))))))"#
    );
    let cfg = section("read-then-exit", &exit_first, true);
    let req = MemoryRequest::default();
    req.state().body_error = Some(BodyError { status: 413, message: "too large".into() });
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Status(413));
    assert_eq!(req.state().logs.len(), 1);
}

#[test]
fn exit_codes_and_traps() {
    let exit7 = format!(r#"(module {IMPORTS} (func (export "_start") (call $proc_exit (i32.const 7))))"#);
    let cfg = section("exit7", &exit7, false);
    let req = MemoryRequest::default();
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Status(500));
    let logs = req.state().logs.clone();
    assert_eq!(logs.len(), 1);
    assert!(logs[0].1.ends_with("exit7.wasm: exited with status 7"), "{logs:?}");

    let exit0 = format!(r#"(module {IMPORTS} (func (export "_start") (call $proc_exit (i32.const 0))))"#);
    let cfg = section("exit0", &exit0, false);
    assert_eq!(host::handler::serve(&cfg, vec![], MemoryRequest::default()), Outcome::Served);

    let trap = format!(r#"(module {IMPORTS} (func (export "_start") unreachable))"#);
    let cfg = section("trap", &trap, false);
    let req = MemoryRequest::default();
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Status(500));
    let logs = req.state().logs.clone();
    assert_eq!(logs.len(), 1);
    assert!(logs[0].1.contains("trap.wasm: wasm trap: wasm `unreachable` instruction executed"), "{logs:?}");
}

#[test]
fn stderr_is_logged_line_by_line() {
    let wat = format!(
        r#"(module {IMPORTS}
  (data (i32.const 100) "first line\nsecond\r\nno newline")
  (func (export "_start") (call $write (i32.const 2) (i32.const 100) (i32.const 29))))"#
    );
    let cfg = section("stderr", &wat, false);
    let req = MemoryRequest::default();
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Served);
    let logs: Vec<String> = req.state().logs.iter().map(|(_, m)| m.rsplit(": ").next().unwrap().to_string()).collect();
    assert_eq!(logs, ["first line", "second", "no newline"]);
}

#[test]
fn cgi_location_decides_the_outcome() {
    let redirect = |name: &str, headers: &str| {
        let wat = format!(
            r#"(module {IMPORTS}
  (data (i32.const 100) "{headers}")
  (func (export "_start") (call $write (i32.const 1) (i32.const 100) (i32.const {len}))))"#,
            len = headers.replace("\\r", "\r").replace("\\n", "\n").len()
        );
        let req = MemoryRequest::default();
        let outcome = host::handler::serve(&section(name, &wat, true), vec![], req.clone());
        (outcome, req)
    };
    let (outcome, req) = redirect("local", "Location: /elsewhere\\r\\n\\r\\ndiscarded");
    assert_eq!(outcome, Outcome::InternalRedirect("/elsewhere".into()));
    assert!(req.state().body_out.is_empty());
    let (outcome, _) = redirect("absolute", "Location: https://example.org/\\r\\n\\r\\n");
    assert_eq!(outcome, Outcome::Status(302));
    let (outcome, req) = redirect("created", "Status: 201 Created\\r\\nLocation: /new\\r\\n\\r\\nmade");
    assert_eq!(outcome, Outcome::Served);
    assert_eq!(req.state().body_out, b"made");
    let (outcome, _) = redirect("malformed", "no colon here\\r\\n\\r\\n");
    assert_eq!(outcome, Outcome::Status(500));
}

#[test]
fn missing_entry_point_fails_the_request() {
    let wat = format!(r#"(module {IMPORTS} (func (export "_start")))"#);
    let mut cfg = section("entry", &wat, false);
    cfg.entry_point = Some("other".into());
    let req = MemoryRequest::default();
    assert_eq!(host::handler::serve(&cfg, vec![], req.clone()), Outcome::Status(500));
    assert!(req.state().logs[0].1.contains("exports no function `other`"));
}
