//! A wasi:http component for the end-to-end tests, written as the wstd crate's own examples
//! write one (`#[wstd::http_server]`); it knows nothing of httpd or mod_wasm. Each path is one
//! behaviour a test asks for, named by the path's last segment; numbers come from the query
//! (`?n=3&ms=200`).

use std::convert::Infallible;
use std::time::Duration;

use futures_lite::stream::unfold;
use wstd::http::body::{Body, Bytes};
use wstd::http::{BodyExt, Client, Error, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let path = request.uri().path().to_owned();
    // Routed by the last segment, wherever the server mounts the component.
    let route = format!("/{}", path.rsplit('/').next().unwrap_or(""));
    let query = request.uri().query().unwrap_or("").to_owned();
    let number = |name: &str, default: u64| param(&query, name).and_then(|v| v.parse().ok()).unwrap_or(default);
    // What `wasmtime serve` prints to its stdout; under httpd it goes to the error log. The
    // benchmark's requests (`?quiet`) print nothing: the peers are compared, not their logs.
    if query != "quiet" {
        println!("http-app serving {path}");
    }
    match route.as_str() {
        "/hello" => Ok(Response::new("Hello from a wasi:http component\n".to_owned().into())),
        "/request" => Ok(Response::new(describe(&request).into())),
        "/echo" => Ok(Response::new(request.into_body())),
        "/count" => count(request.into_body()).await,
        "/headers" => Ok(Response::builder()
            .header("content-type", "text/x-probe")
            .header("x-one", "1")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body("headers\n".to_owned().into())?),
        "/status" => {
            let code = number("code", 200) as u16;
            Ok(Response::builder().status(code).body(format!("status {code}\n").into())?)
        }
        "/chunks" => Ok(Response::new(chunks(number("n", 3), number("ms", 0)))),
        "/big" => Ok(Response::new(big(number("mib", 1)))),
        "/env" => {
            let name = param(&query, "name").unwrap_or_default();
            Ok(Response::new(format!("{name}={}\n", std::env::var(&name).unwrap_or_default()).into()))
        }
        "/file" => {
            let file = param(&query, "path").unwrap_or_default();
            match std::fs::read_to_string(&file) {
                Ok(text) => Ok(Response::new(text.into())),
                Err(e) => Ok(Response::builder().status(404).body(format!("{file}: {e}\n").into())?),
            }
        }
        "/sleep" => {
            wstd::task::sleep(wstd::time::Duration::from_millis(number("ms", 1000))).await;
            Ok(Response::new("slept\n".to_owned().into()))
        }
        "/spin" => {
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(number("ms", 1000)) {
                std::hint::spin_loop();
            }
            Ok(Response::new("spun\n".to_owned().into()))
        }
        "/alloc" => {
            let mib = number("mib", 1) as usize;
            let block = vec![1u8; mib << 20];
            Ok(Response::new(format!("allocated {} MiB\n", block.iter().map(|&b| b as usize).sum::<usize>() >> 20).into()))
        }
        "/fetch" => fetch(&param(&query, "url").unwrap_or_default()).await,
        "/panic" => panic!("http-app panics on purpose"),
        "/panic-in-body" => Ok(Response::new(panic_in_body())),
        _ => Ok(Response::builder().status(StatusCode::NOT_FOUND).body(format!("no route {path}\n").into())?),
    }
}

/// A query parameter, undecoded (the tests send plain values).
fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

/// The request as the component sees it: one line each for method, URI and every header.
fn describe(request: &Request<Body>) -> String {
    let mut text = format!("method: {}\nuri: {}\n", request.method(), request.uri());
    for (name, value) in request.headers() {
        text.push_str(&format!("header: {}: {}\n", name, String::from_utf8_lossy(value.as_bytes())));
    }
    text
}

/// Reads the request body as it streams in, holding one frame at a time.
async fn count(body: Body) -> Result<Response<Body>, Error> {
    let mut body = body.into_boxed_body();
    let (mut bytes, mut frames) = (0u64, 0u64);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            bytes += data.len() as u64;
            frames += 1;
        }
    }
    Ok(Response::new(format!("read {bytes} bytes in {frames} frames\n").into()))
}

/// `n` lines, `ms` milliseconds apart.
fn chunks(n: u64, ms: u64) -> Body {
    Body::from_try_stream(unfold(0, move |i| async move {
        if i == n {
            return None;
        }
        if i > 0 && ms > 0 {
            wstd::task::sleep(wstd::time::Duration::from_millis(ms)).await;
        }
        Some((Ok::<_, Infallible>(Bytes::from(format!("chunk {i}\n"))), i + 1))
    }))
}

/// `mib` MiB of 'x', 64 KiB at a time.
fn big(mib: u64) -> Body {
    let piece = Bytes::from(vec![b'x'; 64 << 10]);
    Body::from_try_stream(unfold(0u64, move |i| {
        let piece = piece.clone();
        async move { (i < mib * 16).then(|| (Ok::<_, Infallible>(piece), i + 1)) }
    }))
}

/// Two lines, then a panic while the body is being written.
fn panic_in_body() -> Body {
    Body::from_try_stream(unfold(0, |i| async move {
        if i == 2 {
            panic!("http-app panics in the middle of its body");
        }
        Some((Ok::<_, Infallible>(Bytes::from(format!("line {i}\n").repeat(2000))), i + 1))
    }))
}

/// An outgoing request to `url`: its status and body, or the error the host gave.
async fn fetch(url: &str) -> Result<Response<Body>, Error> {
    let request = Request::get(url).body(Body::empty())?;
    match Client::new().send(request).await {
        Ok(response) => {
            let status = response.status();
            let mut body = response.into_body();
            let text = body.str_contents().await?.to_owned();
            Ok(Response::new(format!("backend said {}: {text}", status.as_u16()).into()))
        }
        Err(e) => Ok(Response::builder().status(502).body(format!("fetch failed: {e:?}\n").into())?),
    }
}
