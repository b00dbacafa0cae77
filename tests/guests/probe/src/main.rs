//! A test guest whose behaviour the test picks: by its first argument (`WasmArg`), or in CGI
//! mode by the query string (`?do=<action>&n=<number>&v=<value>`).
//!
//! Actions: `args` (argv and environment as text), `download` (n bytes of a known pattern,
//! streamed), `binary` (every byte value), `status` (Status: v), `location` (Location: v),
//! `stderr` (n lines on stderr), `exit` (exit n before output), `exit-after` (exit n after
//! output), `malformed` (a header line without a colon), `no-headers` (exit 0, no output),
//! `trap` (an `unreachable` trap), `read` (consume the body, answer its length).
//!
//! Hostile actions: `loop` (spin forever), `stack-overflow`, `memory-bomb` (allocate until
//! refused), `endless-stdout`, `sleep` (n seconds), `open` (read the file at path v and say
//! what happened), `big-header` (a header block of n bytes), `bad-header-name` (a header
//! name that is not UTF-8).
use std::io::{self, Read, Write};

fn query() -> Vec<(String, String)> {
    std::env::var("QUERY_STRING")
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .map(|(k, v)| (k.to_string(), v.replace("%2F", "/").replace("%3A", ":")))
        .collect()
}

fn param(q: &[(String, String)], name: &str) -> String {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// Byte i of the download pattern (the test recomputes it).
fn pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

fn main() -> io::Result<()> {
    let q = query();
    let action = std::env::args().nth(1).filter(|a| a != "cgi").unwrap_or_else(|| param(&q, "do"));
    let n: u64 = param(&q, "n").parse().unwrap_or(0);
    let v = param(&q, "v");
    let cgi = std::env::var("GATEWAY_INTERFACE").is_ok();
    let mut out = io::stdout().lock();
    let header = |out: &mut io::StdoutLock, ct: &str| -> io::Result<()> {
        if cgi {
            write!(out, "Content-Type: {ct}\r\n\r\n")?;
        }
        Ok(())
    };
    match action.as_str() {
        "args" => {
            header(&mut out, "text/plain")?;
            for (i, a) in std::env::args().enumerate() {
                writeln!(out, "arg{i}={a}")?;
            }
            let mut vars: Vec<_> = std::env::vars().collect();
            vars.sort();
            for (k, val) in vars {
                writeln!(out, "env:{k}={val}")?;
            }
        }
        "download" => {
            header(&mut out, "application/octet-stream")?;
            let mut buf = vec![0u8; 64 * 1024];
            let mut i = 0u64;
            while i < n {
                let len = (n - i).min(buf.len() as u64) as usize;
                for (j, b) in buf[..len].iter_mut().enumerate() {
                    *b = pattern(i + j as u64);
                }
                out.write_all(&buf[..len])?;
                i += len as u64;
            }
        }
        "binary" => {
            header(&mut out, "application/octet-stream")?;
            let all: Vec<u8> = (0..=255u8).collect();
            for _ in 0..4 {
                out.write_all(&all)?;
            }
        }
        "status" => write!(out, "Status: {v}\r\nContent-Type: text/plain\r\nX-Probe: yes\r\n\r\nstatus {v}\n")?,
        "location" => write!(out, "Location: {v}\r\n\r\nthis body is discarded\n")?,
        "stderr" => {
            header(&mut out, "text/plain")?;
            for i in 0..n.max(1) {
                eprintln!("probe stderr line {i}");
            }
            writeln!(out, "wrote {} lines to stderr", n.max(1))?;
        }
        "exit" => std::process::exit(n as i32),
        "exit-after" => {
            header(&mut out, "text/plain")?;
            writeln!(out, "partial output")?;
            out.flush()?;
            std::process::exit(n as i32);
        }
        "malformed" => write!(out, "Content-Type: text/plain\r\nthis line has no colon\r\n\r\nbody\n")?,
        "no-headers" => {}
        "trap" => {
            header(&mut out, "text/plain")?;
            out.flush()?;
            drop(out);
            #[cfg(target_family = "wasm")]
            core::arch::wasm32::unreachable();
            #[cfg(not(target_family = "wasm"))]
            std::process::abort();
        }
        "loop" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "stack-overflow" => {
            #[allow(unconditional_recursion)] // the point: recurse until the stack is gone
            fn deeper(n: u64) -> u64 {
                std::hint::black_box(deeper(std::hint::black_box(n + 1))) + 1
            }
            header(&mut out, "text/plain")?;
            writeln!(out, "{}", deeper(0))?;
        }
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "endless-stdout" => {
            header(&mut out, "application/octet-stream")?;
            let block = vec![b'x'; 64 * 1024];
            loop {
                out.write_all(&block)?;
            }
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(n));
            header(&mut out, "text/plain")?;
            writeln!(out, "slept {n}s")?;
        }
        "open" => {
            header(&mut out, "text/plain")?;
            match std::fs::read(&v) {
                Ok(data) => writeln!(out, "read {} bytes", data.len())?,
                Err(e) => writeln!(out, "refused: {:?}", e.kind())?,
            }
        }
        "big-header" => {
            write!(out, "Content-Type: text/plain\r\nX-Big: ")?;
            let block = vec![b'a'; 8192];
            for _ in 0..n / 8192 {
                out.write_all(&block)?;
            }
            write!(out, "\r\n\r\nbody\n")?;
        }
        "bad-header-name" => {
            out.write_all(b"Content-Type: text/plain\r\nX-\xff\xfe-Name: v\r\n\r\nbody\n")?;
        }
        "read" => {
            let mut total = 0u64;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match io::stdin().read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => total += k as u64,
                    Err(e) => {
                        eprintln!("probe: reading stdin: {e}");
                        std::process::exit(3);
                    }
                }
            }
            header(&mut out, "text/plain")?;
            writeln!(out, "read {total} bytes")?;
        }
        other => {
            header(&mut out, "text/plain")?;
            writeln!(out, "unknown action `{other}`")?;
        }
    }
    out.flush()
}
