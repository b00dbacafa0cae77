//! Lists a directory the administrator shared with `WasmMapDir` (use with
//! `WasmEnableCGI On`). The directory is the first argument (`WasmArg /data`); PATH_INFO
//! selects a subdirectory to list or a file to download. The sandbox, not this code, keeps
//! requests inside the shared directory.
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn respond(status: &str, content_type: &str, body: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    write!(out, "Status: {status}\r\nContent-Type: {content_type}\r\n\r\n")?;
    out.write_all(body)?;
    out.flush()
}

fn list(dir: &Path, url: &str) -> io::Result<()> {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path().is_dir()))
        .collect();
    names.sort();
    let base = url.trim_end_matches('/');
    let mut page = format!("<!DOCTYPE html>\n<html><body><h1>Index of {}</h1>\n<ul>\n", escape(url));
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        page += &format!("<li><a href=\"{base}/{0}{slash}\">{0}{slash}</a></li>\n", escape(&name));
    }
    page += "</ul></body></html>\n";
    respond("200 OK", "text/html; charset=utf-8", page.as_bytes())
}

fn main() -> io::Result<()> {
    let Some(root) = std::env::args().nth(1) else {
        return respond("500 Internal Server Error", "text/plain", b"usage: WasmArg <directory>\n");
    };
    let path_info = std::env::var("PATH_INFO").unwrap_or_default();
    let script = std::env::var("SCRIPT_NAME").unwrap_or_default();
    let mut target = PathBuf::from(&root);
    for part in path_info.split('/').filter(|p| !p.is_empty()) {
        target.push(part);
    }
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => list(&target, &format!("{script}{path_info}")),
        Ok(_) => {
            let mut out = io::stdout().lock();
            write!(out, "Content-Type: application/octet-stream\r\n\r\n")?;
            io::copy(&mut std::fs::File::open(&target)?, &mut out)?;
            out.flush()
        }
        Err(e) => respond("404 Not Found", "text/plain", format!("{}: {e}\n", escape(&path_info)).as_bytes()),
    }
}
