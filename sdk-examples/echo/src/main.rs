//! Returns the request body as the response (use with `WasmEnableCGI On`). Streams: memory
//! use does not grow with the body.
use std::io::{self, Read, Write};

fn main() -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    let content_type = std::env::var("CONTENT_TYPE").unwrap_or_else(|_| "application/octet-stream".into());
    write!(stdout, "Content-Type: {content_type}\r\n\r\n")?;
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stdin.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stdout.write_all(&buf[..n])?;
    }
    stdout.flush()
}
