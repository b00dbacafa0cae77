//! The content handler for wasi:http components: the `wasi:http/proxy` world that `wasmtime
//! serve` runs, through wasmtime-wasi-http (the crate `wasmtime serve` itself uses).
//!
//! httpd's input filters feed the incoming body as the guest reads it; the response's status
//! and headers go to the request, and its body frames to the output filters as they come.
//! Everything runs on the worker thread: the guest's call and the response's body are polled
//! side by side in one future, and what was written is flushed whenever both wait.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::config::Origin;
use crate::exchange::{RunEnd, Shared};
use crate::failure::one_line;
use crate::limits::{yield_every_tick, MemoryCap};
use crate::request::{HttpHead, LogLevel, Request};

/// Store data of a wasi:http component.
pub struct HttpState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub cap: MemoryCap,
    pub outgoing: Outgoing,
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outgoing }
    }
}

/// How a component's outgoing requests are checked and sent: only to the allowed origins,
/// each phase bounded by the request's `WasmTimeout` (which also bounds the whole call).
pub struct Outgoing {
    allowed: Arc<[Origin]>,
    timeout: Duration,
    /// Logs a refusal in the request's context.
    refused: Box<dyn FnMut(String) + Send>,
}

impl WasiHttpHooks for Outgoing {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        let origin = Origin::of(request.uri());
        if !origin.as_ref().is_some_and(|o| self.allowed.contains(o)) {
            let shown = origin.map_or_else(|| request.uri().to_string(), |o| o.to_string());
            (self.refused)(format!("outgoing request to {shown} refused: not an origin WasmHttpOutgoing allows"));
            // The body is taken in (and dropped) before the refusal, so that a guest sending
            // it while it waits for the response sees the refusal, not a broken body stream.
            return Box::new(async move {
                let mut body = request.into_body();
                while let Some(Ok(_)) = body.frame().await {}
                Err(wasmtime_wasi_http::Error::HttpRequestDenied)
            });
        }
        let limit = |t: Option<Duration>| Some(t.map_or(self.timeout, |t| t.min(self.timeout)));
        let options = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: limit(options.connect_timeout),
            first_byte_timeout: limit(options.first_byte_timeout),
            between_bytes_timeout: limit(options.between_bytes_timeout),
        };
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            let io: Box<dyn Future<Output = _> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

/// The request body, read from httpd's input filters when the guest asks for it.
struct HttpdBody<R: Request>(Shared<R>);

impl<R: Request> Body for HttpdBody<R> {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let read = self.0.lock().unwrap_or_else(|p| p.into_inner()).read_body_chunk();
        Poll::Ready(match read {
            Ok(Some(data)) => Some(Ok(Frame::data(data))),
            Ok(None) => None,
            Err(message) => Some(Err(wasmtime_wasi_http::Error::InternalError(Some(message)))),
        })
    }
}

/// The incoming request as `wasmtime serve` builds it: scheme, authority and path with query
/// in the URI, the headers (the crate drops the hop-by-hop ones), the body streamed.
fn incoming_request<R: Request>(head: HttpHead, body: HttpdBody<R>) -> Result<(Scheme, http::Request<HttpdBody<R>>), String> {
    let uri = http::Uri::builder()
        .scheme(head.scheme.as_str())
        .authority(head.authority.as_str())
        .path_and_query(head.path_with_query.as_str())
        .build()
        .map_err(|e| format!("the request's URI cannot be given to a wasi:http component: {e}"))?;
    let mut request = http::Request::builder()
        .method(head.method.as_bytes())
        .uri(uri)
        .body(body)
        .map_err(|e| format!("the request cannot be given to a wasi:http component: {e}"))?;
    let headers = request.headers_mut();
    for (name, value) in &head.headers {
        // httpd has parsed them already; a field the http crate cannot hold is left out.
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let scheme = if head.scheme == "https" { Scheme::Https } else { Scheme::Http };
    Ok((scheme, request))
}

/// How the response side ended.
enum Reply {
    /// Waiting for the guest's `response-outparam.set`.
    Waiting(tokio::sync::oneshot::Receiver<Result<http::Response<HyperOutgoingBody>, ErrorCode>>),
    /// Passing body frames on.
    Body(HyperOutgoingBody),
    /// The body ended completely and the end was passed on.
    Complete,
    /// No response will come, or it broke; the text says why.
    Failed(String),
    /// The guest never set a response.
    NotSet,
}

/// The linker wasi:http components are pre-linked with: all of WASI 0.2 as for commands (as
/// `wasmtime serve` links it), plus wasi:http.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HttpState>> {
    let mut linker = Linker::<HttpState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// A wasi:http component's compiled code, pre-linked, ready to instantiate per request.
pub type HttpPre = ProxyPre<HttpState>;

/// Pre-links a wasi:http component.
pub fn load(linker: &Linker<HttpState>, component: &Component) -> wasmtime::Result<HttpPre> {
    ProxyPre::new(linker.instantiate_pre(component)?)
}

/// Runs a wasi:http component for one request. `wasi` is the request's WASI context (its
/// stdio already wired to the log), `allowed` the origins outgoing requests may reach.
pub(crate) async fn run<R: Request>(
    pre: &HttpPre,
    mut wasi: WasiCtxBuilder,
    exchange: Shared<R>,
    allowed: Arc<[Origin]>,
    timeout: Duration,
    memory: u64,
) -> RunEnd {
    let log = exchange.clone();
    let outgoing = Outgoing {
        allowed,
        timeout,
        refused: Box::new(move |message| log.lock().unwrap_or_else(|p| p.into_inner()).log(LogLevel::Warn, &message)),
    };
    let state = HttpState { wasi: wasi.build(), http: WasiHttpCtx::new(), table: ResourceTable::new(), cap: MemoryCap::new(memory), outgoing };
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.cap);
    yield_every_tick(&mut store);
    let proxy = match pre.instantiate_async(&mut store).await {
        Ok(proxy) => proxy,
        Err(e) => return RunEnd::instantiate_error(e),
    };
    let head = exchange.lock().unwrap_or_else(|p| p.into_inner()).http_head();
    let (scheme, request) = match incoming_request(head, HttpdBody(exchange.clone())) {
        Ok(request) => request,
        Err(reason) => return RunEnd::broken(reason),
    };
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let mut view = store.data_mut().http();
    let resources = view.new_incoming_request(scheme, request).and_then(|req| Ok((req, view.new_response_outparam(sender)?)));
    let (request, outparam) = match resources {
        Ok(resources) => resources,
        Err(e) => return RunEnd::broken(one_line(&e)),
    };

    // The Store goes with the call: once the guest returns, its resources are dropped and a
    // body it did not finish ends.
    let guest = async move {
        let end = proxy.wasi_http_incoming_handler().call_handle(&mut store, request, outparam).await;
        drop(store);
        end
    };
    let mut guest = pin!(guest);
    let mut guest_end: Option<Result<(), wasmtime::Error>> = None;
    let mut reply = Reply::Waiting(receiver);
    let mut unflushed = false;
    poll_fn(|cx| loop {
        let mut progress = false;
        if guest_end.is_none() {
            if let Poll::Ready(end) = guest.as_mut().poll(cx) {
                guest_end = Some(end);
                progress = true;
            }
        }
        let guest_failed = matches!(guest_end, Some(Err(_)));
        let mut ex = exchange.lock().unwrap_or_else(|p| p.into_inner());
        match &mut reply {
            Reply::Waiting(receiver) => match Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(Ok(response))) => {
                    let (parts, body) = response.into_parts();
                    let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
                    ex.start_response(parts.status.as_u16(), parts.status.canonical_reason(), &headers);
                    reply = Reply::Body(body);
                    progress = true;
                }
                Poll::Ready(Ok(Err(code))) => reply = Reply::Failed(format!("set an error instead of a response: {code:?}")),
                Poll::Ready(Err(_)) => reply = Reply::NotSet,
                Poll::Pending => {}
            },
            Reply::Body(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    progress = true;
                    if let Ok(data) = frame.into_data() {
                        if ex.write_body(&data).is_err() {
                            // The client is gone: dropping the body makes the guest's writes fail.
                            reply = Reply::Failed("the client went away".into());
                        }
                        unflushed = true;
                    }
                    // Trailers: httpd has no way to send a handler's trailers; they are dropped.
                }
                Poll::Ready(Some(Err(e))) => reply = Reply::Failed(format!("its response body failed: {e}")),
                Poll::Ready(None) if guest_failed => reply = Reply::Failed("the guest failed while writing its body".into()),
                Poll::Ready(None) => {
                    // Complete: the client gets the end now, even if the guest goes on running.
                    let _ = ex.finish_body();
                    reply = Reply::Complete;
                }
                Poll::Pending => {}
            },
            Reply::Complete | Reply::Failed(_) | Reply::NotSet => {}
        }
        let replied = matches!(reply, Reply::Complete | Reply::Failed(_) | Reply::NotSet);
        if replied && guest_end.is_some() {
            return Poll::Ready(());
        }
        if !progress {
            // Both wait (for the client, a timer, the backend): what the guest wrote goes out.
            if unflushed {
                unflushed = false;
                let _ = ex.flush();
            }
            return Poll::Pending;
        }
    })
    .await;

    match (guest_end, reply) {
        (Some(Err(e)), _) => RunEnd::error(e),
        (_, Reply::Failed(reason)) => RunEnd::broken(reason),
        (_, Reply::NotSet) => RunEnd::broken("returned without setting a response (response-outparam.set)"),
        _ => RunEnd::Exited(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incoming_request_keeps_path_query_and_headers() {
        let head = HttpHead {
            method: "PATCH".into(),
            scheme: "https".into(),
            authority: "example.com:8443".into(),
            path_with_query: "/a%20b?c=%2F".into(),
            headers: vec![("X-One".into(), b"1".to_vec()), ("X-Bin".into(), vec![0xe9]), ("Bad Name".into(), b"x".to_vec())],
        };
        let exchange = crate::exchange::Exchange::new(crate::testing::MemoryRequest::default(), Arc::from("t.wasm"), false).shared();
        let (scheme, request) = incoming_request(head, HttpdBody(exchange)).unwrap();
        assert!(matches!(scheme, Scheme::Https));
        assert_eq!(request.method(), "PATCH");
        assert_eq!(request.uri().to_string(), "https://example.com:8443/a%20b?c=%2F");
        assert_eq!(request.headers()["x-one"], "1");
        assert_eq!(request.headers()["x-bin"].as_bytes(), [0xe9]);
        assert_eq!(request.headers().len(), 2, "a field the http crate cannot hold is left out");
    }
}
