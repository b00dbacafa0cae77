//! Shows what a CGI program receives from mod_wasm (use with `WasmEnableCGI On`): its
//! arguments, its environment and the request body, as an HTML page.
use std::io::{self, Read, Write};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn main() -> io::Result<()> {
    let mut body = Vec::new();
    io::stdin().read_to_end(&mut body)?;
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();

    let mut out = io::stdout().lock();
    write!(out, "Content-Type: text/html; charset=utf-8\r\n\r\n")?;
    writeln!(out, "<!DOCTYPE html>\n<html><head><title>Request viewer</title></head><body>")?;
    writeln!(out, "<h1>Request viewer</h1>\n<h2>Arguments</h2>\n<ol>")?;
    for arg in std::env::args() {
        writeln!(out, "<li><code>{}</code></li>", escape(&arg))?;
    }
    writeln!(out, "</ol>\n<h2>Environment</h2>\n<table>")?;
    for (name, value) in &vars {
        writeln!(out, "<tr><th>{}</th><td><code>{}</code></td></tr>", escape(name), escape(value))?;
    }
    writeln!(out, "</table>\n<h2>Body ({} bytes)</h2>", body.len())?;
    writeln!(out, "<pre>{}</pre>\n</body></html>", escape(&String::from_utf8_lossy(&body)))?;
    out.flush()
}
