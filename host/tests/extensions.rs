//! The life of a request's extension instances, without Apache: first phase, later phases,
//! subrequests and redirects, a trap in the middle, the server-scope pool, and a subrequest
//! started from inside a guest's call. Uses the test guest ext-probe (`make guests`).

use std::sync::{Arc, Mutex};

use host::config::DirConfig;
use host::child;
use host::engine::ChildSettings;
use host::config::ExtensionRef;
use host::extension::{CallContext, FilterStream, RequestInstances};
use host::phase::{ChunkEnd, FilterKind, FilterOutcome, HookOutcome, Phase, Scope};
use host::failure::Failure;
use host::limits::Limits;
use host::{BodyError, Field, HttpdRequest, LogLevel, Table};

/// What a test request recorded.
#[derive(Default)]
struct Seen {
    body: Vec<u8>,
    headers_out: Vec<(String, String)>,
    logs: Vec<String>,
}

/// A request as ext-probe sees it; `on_write` runs while the guest writes its body (as an
/// output filter would), to start a subrequest from inside the guest's call.
struct TestRequest {
    uri: String,
    args: Option<String>,
    seen: Arc<Mutex<Seen>>,
    on_write: Option<Box<dyn FnMut() + Send>>,
    headers_in: Vec<(String, String)>,
}

impl TestRequest {
    fn new(uri: &str, seen: &Arc<Mutex<Seen>>) -> Box<Self> {
        Box::new(TestRequest { uri: uri.into(), args: None, seen: seen.clone(), on_write: None, headers_in: Vec::new() })
    }
}

impl HttpdRequest for TestRequest {
    fn field(&self, field: Field) -> Option<String> {
        match field {
            Field::Uri => Some(self.uri.clone()),
            Field::Method => Some("GET".into()),
            Field::Args => self.args.clone(),
            Field::Handler => Some("ext-probe".into()),
            _ => None,
        }
    }
    fn set_field(&mut self, _: Field, _: Option<&str>) {}
    fn port(&self) -> u16 {
        80
    }
    fn status(&self) -> u16 {
        200
    }
    fn set_status(&mut self, _: u16) {}
    fn is_https(&self) -> bool {
        false
    }
    fn is_initial_req(&self) -> bool {
        true
    }
    fn table_get_all(&self, table: Table, name: &str) -> Vec<String> {
        let headers = if table == Table::HeadersIn { &self.headers_in[..] } else { &[] };
        headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
    }
    fn table_set(&mut self, table: Table, name: &str, value: &str) {
        if table == Table::HeadersOut {
            self.seen.lock().unwrap().headers_out.push((name.into(), value.into()));
        }
    }
    fn table_add(&mut self, table: Table, name: &str, value: &str) {
        self.table_set(table, name, value)
    }
    fn table_merge(&mut self, table: Table, name: &str, value: &str) {
        self.table_set(table, name, value)
    }
    fn table_unset(&mut self, _: Table, _: &str) {}
    fn table_entries(&self, _: Table) -> Vec<(String, String)> {
        Vec::new()
    }
    fn read_body(&mut self, _: &mut [u8]) -> Result<usize, BodyError> {
        Ok(0)
    }
    fn write_body(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(on_write) = &mut self.on_write {
            on_write();
        }
        self.seen.lock().unwrap().body.extend_from_slice(data);
        Ok(())
    }
    fn add_filter(&mut self, _: FilterKind, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn lookup(&mut self, _: host::request::LookupOf, _: &str) -> Result<host::request::Lookup, String> {
        Err("no lookups in these tests".into())
    }
    fn include(&mut self, _: &str) -> u16 {
        500
    }
    fn internal_redirect(&mut self, _: &str) -> Result<(), String> {
        Err("no redirects in these tests".into())
    }
    fn store(&mut self, _: &host::request::StoreBackend, _: &[u8], _: host::request::StoreOp<'_>) -> Result<Option<Vec<u8>>, String> {
        Err("no shared stores in these tests".into())
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.seen.lock().unwrap().logs.push(format!("{level:?} {message}"));
    }
}

/// The test guests ext-probe and filter-probe, loaded once for the process.
fn slots() -> [Arc<host::slot::ModuleSlot>; 2] {
    static SLOTS: Mutex<Option<[Arc<host::slot::ModuleSlot>; 2]>> = Mutex::new(None);
    let mut slots = SLOTS.lock().unwrap();
    slots
        .get_or_insert_with(|| {
            let load = |name: &str| {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guests/wasm32-wasip2").join(name);
                assert!(path.exists(), "{} missing: run `make guests`", path.display());
                host::registry::register(&path, host::extension::check_module).unwrap()
            };
            let loaded = [load("ext_probe.wasm"), load("filter_probe.wasm")];
            child::start(&ChildSettings { concurrent_requests: 4, cache_dir: None }).unwrap();
            loaded
        })
        .clone()
}

fn filter_probe(config: &str) -> ExtensionRef {
    ExtensionRef { slot: slots()[1].clone(), config: Some(Arc::from(config)), order: Default::default() }
}

fn probe(config: &str) -> ExtensionRef {
    let ext = ExtensionRef { slot: slots()[0].clone(), config: Some(Arc::from(config)), order: Default::default() };
    // The section this module would stand in has it in its extensions.
    let mut section = DirConfig::default();
    section.add_extension(ext.clone());
    assert!(section.exports(Phase::Handler));
    ext
}

fn kept(ext: &ExtensionRef) -> usize {
    match ext.slot.ready() {
        Ok(loaded) => loaded.downcast_ref::<host::extension::ExtensionPre>().expect("an extension").kept_count(),
        Err(reason) => panic!("not loaded: {reason}"),
    }
}

const SERVER: Scope = Scope::Server { max: Some(1) };

fn ctx(module: &ExtensionRef, scope: Scope) -> CallContext<'_> {
    CallContext { module, limits: limits(), scope }
}

fn limits() -> Limits {
    Limits::default()
}

fn body(seen: &Arc<Mutex<Seen>>) -> String {
    String::from_utf8_lossy(&seen.lock().unwrap().body).into_owned()
}

#[test]
fn one_instance_serves_every_phase_subrequest_and_redirect_of_a_request() {
    let ext = probe("");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let instances = RequestInstances::default();
    let run = |phase, uri| instances.run(ctx(&ext, Scope::Request), phase, TestRequest::new(uri, &seen));
    assert_eq!(run(Phase::AccessChecker, "/main"), HookOutcome::Declined);
    // A subrequest, then an internal redirect: the original request's instance again.
    assert_eq!(run(Phase::AccessChecker, "/sub"), HookOutcome::Declined);
    assert_eq!(run(Phase::Fixups, "/redirected"), HookOutcome::Declined);
    assert_eq!(run(Phase::Handler, "/redirected"), HookOutcome::Ok);
    assert_eq!(body(&seen), "user= body_in_access=- phases=access,access,fixups,handler\n");
    instances.end(&mut |_, _| {});
}

#[test]
fn a_trap_fails_the_phase_and_every_later_one_and_the_instance_is_not_kept() {
    let ext = probe("trap-if-asked");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let instances = RequestInstances::default();
    let mut trapping = TestRequest::new("/x", &seen);
    trapping.args = Some("trap".into());
    let before = kept(&ext);
    assert_eq!(instances.run(ctx(&ext, SERVER), Phase::AccessChecker, trapping), HookOutcome::Failed(Failure::Trap));
    assert!(seen.lock().unwrap().logs.iter().any(|l| l.contains("access-checker: wasm trap")), "{:?}", seen.lock().unwrap().logs);
    assert_eq!(instances.run(ctx(&ext, SERVER), Phase::Handler, TestRequest::new("/x", &seen)), HookOutcome::Failed(Failure::Trap));
    assert_eq!(body(&seen), "", "the trapped instance was entered again");
    instances.end(&mut |_, _| {});
    assert!(kept(&ext) <= before, "a trapped instance went back to the pool");
}

#[test]
fn server_scope_returns_instances_at_request_end_up_to_its_maximum() {
    let ext = probe("");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (a, b) = (RequestInstances::default(), RequestInstances::default());
    for instances in [&a, &b] {
        assert_eq!(instances.run(ctx(&ext, SERVER), Phase::Fixups, TestRequest::new("/x", &seen)), HookOutcome::Declined);
    }
    let mut ended = Vec::new();
    a.end(&mut |level, line| ended.push(format!("{level:?} {line}")));
    b.end(&mut |level, line| ended.push(format!("{level:?} {line}")));
    // Two requests ran at once; the pool keeps at most one (max 1).
    assert_eq!(kept(&ext), 1);
    assert!(ended.iter().all(|l| !l.starts_with("Error")), "{ended:?}");
    // The next request takes the kept instance: it has served before.
    let next = RequestInstances::default();
    assert_eq!(next.run(ctx(&ext, SERVER), Phase::Handler, TestRequest::new("/x", &seen)), HookOutcome::Ok);
    let served: u32 = seen.lock().unwrap().headers_out.iter().find(|(n, _)| n == "X-Instance-Requests").unwrap().1.parse().unwrap();
    assert!(served >= 2, "a new instance, not the kept one");
    assert_eq!(kept(&ext), 0);
    next.end(&mut |_, _| {});
}

#[test]
fn a_subrequest_started_inside_a_guest_call_gets_an_instance_of_its_own() {
    let ext = probe("");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let instances = Arc::new(RequestInstances::default());
    assert_eq!(instances.run(ctx(&ext, Scope::Request), Phase::Fixups, TestRequest::new("/page", &seen)), HookOutcome::Declined);
    // While the handler writes its body, an output filter runs a subrequest through the
    // same request's hooks (mod_include's `include virtual`).
    let nested = Arc::new(Mutex::new(None));
    let mut writer = TestRequest::new("/page", &seen);
    let sub_seen = Arc::new(Mutex::new(Seen::default()));
    /// The request's instances, reached from the nested call as httpd's hooks would.
    struct Shared(Arc<RequestInstances>);
    // SAFETY: the nested call runs on this thread, inside the outer call.
    unsafe impl Send for Shared {}
    let (inner, result, sub, sub_ext) = (Shared(instances.clone()), nested.clone(), sub_seen.clone(), ext.clone());
    writer.on_write = Some(Box::new(move || {
        // The whole Shared is captured (a closure using only `inner.0` would capture the Arc).
        let shared = &inner;
        let outcome = shared.0.run(ctx(&sub_ext, Scope::Request), Phase::AccessChecker, TestRequest::new("/included", &sub));
        *result.lock().unwrap() = Some(outcome);
    }));
    assert_eq!(instances.run(ctx(&ext, Scope::Request), Phase::Handler, writer), HookOutcome::Ok);
    assert_eq!(*nested.lock().unwrap(), Some(HookOutcome::Declined));
    // The request's own instance saw only its own phases.
    assert_eq!(body(&seen), "user= body_in_access=- phases=fixups,handler\n");
    assert!(sub_seen.lock().unwrap().logs.is_empty(), "{:?}", sub_seen.lock().unwrap().logs);
    match Arc::try_unwrap(instances) {
        Ok(instances) => instances.end(&mut |_, _| {}),
        Err(_) => panic!("still shared"),
    }
}

#[test]
fn answers_that_mean_nothing_in_a_phase_fail_with_500_and_a_line() {
    let ext = probe("bad-answers");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let instances = RequestInstances::default();
    let outcome = instances.run(ctx(&ext, Scope::Request), Phase::AccessChecker, TestRequest::new("/status-0", &seen));
    assert_eq!(outcome, HookOutcome::Failed(Failure::Trap));
    let logs = seen.lock().unwrap().logs.clone();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(logs[0].contains("ext_probe.wasm: access-checker: returned http-status(0)"), "{logs:?}");
    instances.end(&mut |_, _| {});
}

#[test]
fn a_filter_runs_on_the_instance_of_the_requests_hooks() {
    let (hooks, filter) = (filter_probe(""), filter_probe("tag count"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let instances = RequestInstances::default();
    let mut req = TestRequest::new("/page", &seen);
    req.headers_in.push(("X-Tag".into(), "abc".into()));
    assert_eq!(instances.run(ctx(&hooks, Scope::Request), Phase::Fixups, req), HookOutcome::Declined);
    let mut stream = FilterStream::default();
    let mut call = |data: &[u8], at| {
        let req = TestRequest::new("/page", &seen);
        instances.filter(ctx(&filter, Scope::Request), FilterKind::Output, &mut stream, req, data, at)
    };
    assert_eq!(call(b"hello", ChunkEnd::More), FilterOutcome::Emit(b"hello".to_vec()));
    // The state of the fixups call and of the first piece is there at the end.
    assert_eq!(call(b"", ChunkEnd::End), FilterOutcome::Emit(b"[calls=2 bytes=5][tag=abc]".to_vec()));
    instances.end(&mut |_, _| {});
}

#[test]
fn a_filter_answer_outside_the_rules_fails_with_a_line() {
    let filter = filter_probe("status-200");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let instances = RequestInstances::default();
    let req = TestRequest::new("/x", &seen);
    let outcome = instances.filter(ctx(&filter, Scope::Request), FilterKind::Output, &mut FilterStream::default(), req, b"x", ChunkEnd::More);
    assert_eq!(outcome, FilterOutcome::Failed(Failure::Trap));
    let logs = seen.lock().unwrap().logs.clone();
    assert!(logs.len() == 1 && logs[0].contains("filter_probe.wasm: output-filter: returned http-status(200)"), "{logs:?}");
    instances.end(&mut |_, _| {});
}
