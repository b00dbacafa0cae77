//! Extension modules (`WasmApacheModule`): components built against the `apache:httpd` WIT
//! world (wit/apache-httpd.wit) that take part in httpd's request phases.
//!
//! A component exports one interface per phase it implements; [`ExtensionPre`] remembers
//! which, so a phase it does not export is never called. A request's first hook call for a
//! module gives it an instance ([`RequestInstances`]) that stays with the request until it
//! ends, so a guest keeps state from one phase to the next. Under [`Scope::Request`] that
//! instance is new and is dropped with the request; under [`Scope::Server`] it is taken from
//! the instances the process keeps and returned to them afterwards, so its memory (caches,
//! parsed configuration) outlives the request and only a request that finds none pays for
//! the instantiation. A guest tells its requests apart by [`RequestInstances`]'s serial number.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Instance, InstancePre, Linker, Resource, ResourceTable, TypedFunc};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::exchange::{LineBuffer, Role, Stdio};
use crate::limits::{deadline_message, run_with_deadline, yield_every_tick, Limits, MemoryCap};
use crate::registry::ModuleSlot;
use crate::request::{BodyError, Field, HttpdRequest, LogLevel, Table};
use crate::validate::{ValidateError, WasmInfo, WasmKind};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "apache:httpd/imports",
        imports: { default: trappable },
        with: { "apache:httpd/types.request": super::RequestRef },
    });
}

use bindings::apache::httpd::types as wit;

/// The WIT package's interface prefix and version an extension module exports.
const PACKAGE: &str = "apache:httpd/";
const VERSION: &str = "@0.1.0";

/// A request phase an extension module can take part in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    TranslateName,
    HeaderParser,
    AccessChecker,
    CheckUserId,
    AuthChecker,
    TypeChecker,
    Fixups,
    Handler,
    LogTransaction,
}

impl Phase {
    pub const COUNT: usize = 9;
    pub const ALL: [Phase; Phase::COUNT] = [
        Phase::TranslateName,
        Phase::HeaderParser,
        Phase::AccessChecker,
        Phase::CheckUserId,
        Phase::AuthChecker,
        Phase::TypeChecker,
        Phase::Fixups,
        Phase::Handler,
        Phase::LogTransaction,
    ];

    /// The WIT interface (and function) name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::TranslateName => "translate-name",
            Phase::HeaderParser => "header-parser",
            Phase::AccessChecker => "access-checker",
            Phase::CheckUserId => "check-user-id",
            Phase::AuthChecker => "auth-checker",
            Phase::TypeChecker => "type-checker",
            Phase::Fixups => "fixups",
            Phase::Handler => "handler",
            Phase::LogTransaction => "log-transaction",
        }
    }

    /// A bit of a [`PhaseSet`].
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }

    fn reads_body(self) -> bool {
        matches!(self, Phase::AccessChecker | Phase::Handler)
    }

    fn export_name(self) -> String {
        format!("{PACKAGE}{}{VERSION}", self.name())
    }
}

/// How long an extension module's instance lives (`WasmApacheModuleScope`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// A new instance for every request, dropped when the request ends: nothing a guest
    /// does in one request is visible to the next.
    #[default]
    Request,
    /// Instances are kept by the child process and lent to one request at a time, the most
    /// recently returned first, like mod_lua's `LuaScope server`: as many instances as
    /// requests use at once, and the ones in use are the ones still in the CPU's caches. (A
    /// per-thread scope was measured slower: 64 threads' instances do not stay in cache.)
    /// A trapped instance is never reused.
    Server,
}

impl Scope {
    pub fn parse(word: &str) -> Result<Scope, String> {
        match word.to_ascii_lowercase().as_str() {
            "request" => Ok(Scope::Request),
            "server" => Ok(Scope::Server),
            _ => Err(format!("`{word}` is not a scope: use request or server")),
        }
    }
}

/// The phases a set of modules exports, as bits ([`Phase::bit`]).
pub type PhaseSet = u16;

/// The phases a component exports, from the names validation found; empty for a component
/// that does not target the apache:httpd world.
pub fn exported_phases(exports: &[String]) -> PhaseSet {
    Phase::ALL.iter().filter(|p| exports.iter().any(|e| *e == p.export_name())).fold(0, |set, p| set | p.bit())
}

/// Checks at configuration time that a file is an extension module: a component that
/// exports at least one phase of the apache:httpd world and imports only what the host
/// provides.
pub fn check_module(path: &str, info: &WasmInfo) -> Result<(), ValidateError> {
    let phases = exported_phases(&info.exports);
    if info.kind != WasmKind::Component || phases == 0 {
        let names: Vec<String> = Phase::ALL.iter().map(|p| p.export_name()).collect();
        return Err(ValidateError::Invalid {
            path: path.to_owned(),
            message: format!(
                "it does not target the apache:httpd world: a WasmApacheModule is a component exporting at least one of {}",
                names.join(", ")
            ),
        });
    }
    crate::validate::check_component_imports(path, info, &[IMPORTS])
}

/// The interface extension modules import from the host.
const IMPORTS: &str = "apache:httpd/types@0.1.";

/// The host side of the `request` resource: a marker pushed into the store's table for one
/// hook call; the request itself is in [`ExtState::call`].
pub struct RequestRef;

/// One hook call in progress.
struct HookCall {
    req: Box<dyn HttpdRequest>,
    phase: Phase,
    config: Option<Arc<str>>,
    /// [`RequestInstances::serial`] of the request.
    serial: u64,
}

/// Store data of an extension module instance.
pub struct ExtState {
    wasi: WasiCtx,
    table: ResourceTable,
    call: Option<HookCall>,
    /// What the guest wrote to stdout/stderr (a panic message, debug prints).
    output: Arc<Mutex<LineBuffer>>,
    cap: MemoryCap,
}

impl WasiView for ExtState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Compiled, pre-linked extension module and the phases it exports.
pub struct ExtensionPre {
    pre: InstancePre<ExtState>,
    phases: [Option<ComponentExportIndex>; Phase::COUNT],
}

/// Adds the host's apache:httpd imports and WASI to a linker for extension modules.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<ExtState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wit::add_to_linker::<ExtState, HasSelf<ExtState>>(&mut linker, |s| s)?;
    Ok(linker)
}

pub(crate) fn load(linker: &Linker<ExtState>, component: &Component) -> wasmtime::Result<ExtensionPre> {
    let mut phases = [None; Phase::COUNT];
    for phase in Phase::ALL {
        if let Some(iface) = component.get_export_index(None, &phase.export_name()) {
            phases[phase as usize] = component.get_export_index(Some(&iface), phase.name());
        }
    }
    Ok(ExtensionPre { pre: linker.instantiate_pre(component)?, phases })
}

/// An extension module as a configuration section names it.
#[derive(Clone, Debug)]
pub struct ExtensionRef {
    pub slot: Arc<ModuleSlot>,
    /// The optional config string of the `WasmApacheModule` line.
    pub config: Option<Arc<str>>,
}

/// What a hook call tells httpd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Ok,
    Declined,
    Done,
    Status(u16),
    /// The guest failed (logged): 500 for a trap, 503 for its deadline or no instance.
    Failed(u16),
}

/// A phase's export, typed (looked up and checked once per instance).
type HookFunc = TypedFunc<(Resource<RequestRef>,), (wit::HookResult,)>;

struct Live {
    slot: Arc<ModuleSlot>,
    store: Store<ExtState>,
    instance: Instance,
    hooks: [Option<HookFunc>; Phase::COUNT],
    scope: Scope,
    /// A trapped instance is not entered again.
    failed: bool,
}

/// [`Scope::Server`] instances between requests, the most recently returned last.
static SERVER_KEPT: Mutex<Vec<Live>> = Mutex::new(Vec::new());

/// Numbers requests, so that a reused instance can tell a new request from the last one.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

/// The extension instances of one request, created or taken as phases need them.
pub struct RequestInstances {
    live: Vec<Live>,
    /// Unique in this process; what the guest's `request.serial` returns.
    serial: u64,
}

impl Default for RequestInstances {
    fn default() -> Self {
        RequestInstances { live: Vec::new(), serial: NEXT_SERIAL.fetch_add(1, Ordering::Relaxed) }
    }
}

impl Drop for RequestInstances {
    /// Gives server-scoped instances back to the process's pool.
    fn drop(&mut self) {
        // The others are dropped here, outside the pool's lock.
        for live in self.live.drain(..).filter(|l| l.scope == Scope::Server && !l.failed) {
            server_kept().push(live);
        }
    }
}

fn server_kept() -> std::sync::MutexGuard<'static, Vec<Live>> {
    // Lives are pushed and popped whole; a panic elsewhere cannot leave one half-moved.
    SERVER_KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A kept instance of `slot`, the most recently returned, if its store has the same memory
/// limit (one that has not is dropped).
fn take_kept(slot: &Arc<ModuleSlot>, memory: u64) -> Option<Live> {
    let live = {
        let mut kept = server_kept();
        let i = kept.iter().rposition(|k| Arc::ptr_eq(&k.slot, slot))?;
        kept.remove(i)
    };
    (live.store.data().cap.limit() == memory).then_some(live)
}

impl RequestInstances {
    /// Calls `module`'s export for `phase`, instantiating the module first (or taking a kept
    /// one, in [`Scope::Server`]) if this request has not used it yet.
    /// Declines if the module does not export the phase. Failures are logged through
    /// `req`, naming the module and the phase.
    pub fn run(
        &mut self,
        module: &ExtensionRef,
        phase: Phase,
        limits: Limits,
        scope: Scope,
        mut req: Box<dyn HttpdRequest>,
    ) -> HookOutcome {
        let path = module.slot.name();
        let pre = match module.slot.ready() {
            Ok(crate::engine::Loaded::Extension(pre)) => pre,
            other => {
                let reason = other.err().unwrap_or_else(|| "is a program (WasmModule), not an extension module".into());
                req.log(LogLevel::Error, &format!("{path}: {reason}"));
                return HookOutcome::Failed(500);
            }
        };
        let Some(func_index) = pre.phases[phase as usize] else {
            return HookOutcome::Declined;
        };
        let index = match self.live.iter().position(|l| Arc::ptr_eq(&l.slot, &module.slot)) {
            Some(i) => i,
            None => {
                let kept = if scope == Scope::Server { take_kept(&module.slot, limits.memory) } else { None };
                let live = match kept {
                    Some(live) => live,
                    None => match run_with_deadline(limits.timeout, instantiate(pre, limits.memory)) {
                        Ok(Some(Ok((store, instance)))) => {
                            Live { slot: module.slot.clone(), store, instance, hooks: [None; Phase::COUNT], scope, failed: false }
                        }
                        Ok(Some(Err(e))) => return instantiate_failed(&mut *req, path, phase, &crate::handler::one_line(&e), 503),
                        Ok(None) => return instantiate_failed(&mut *req, path, phase, &deadline_message(limits.timeout), 503),
                        Err(reason) => return instantiate_failed(&mut *req, path, phase, &reason, 500),
                    },
                };
                self.live.push(live);
                self.live.len() - 1
            }
        };
        let live = &mut self.live[index];
        if live.failed {
            return HookOutcome::Failed(500);
        }
        live.store.data_mut().call = Some(HookCall { req, phase, config: module.config.clone(), serial: self.serial });
        let (result, failure_status) = match run_with_deadline(limits.timeout, call_hook(live, phase, &func_index)) {
            Ok(Some(result)) => (result, 500),
            Ok(None) => (Err(wasmtime::format_err!("{}", deadline_message(limits.timeout))), 503),
            Err(reason) => (Err(wasmtime::format_err!("{reason}")), 500),
        };
        let call = live.store.data_mut().call.take();
        let mut req = match call {
            Some(call) => call.req,
            None => return HookOutcome::Failed(500),
        };
        let lines = live.store.data().output.lock().unwrap_or_else(|p| p.into_inner()).take_lines(true);
        match result {
            Ok(outcome) => {
                for line in lines {
                    req.log(LogLevel::Warn, &format!("{path}: {}: {line}", phase.name()));
                }
                outcome
            }
            Err(e) => {
                live.failed = true;
                let said = lines.join(" | ");
                let said = if said.is_empty() { String::new() } else { format!(" (guest output: {said})") };
                req.log(LogLevel::Error, &format!("{path}: {}: {}{said}", phase.name(), crate::handler::one_line(&e)));
                HookOutcome::Failed(failure_status)
            }
        }
    }
}

fn instantiate_failed(req: &mut dyn HttpdRequest, path: &str, phase: Phase, reason: &str, status: u16) -> HookOutcome {
    req.log(LogLevel::Error, &format!("{path}: {}: cannot instantiate: {reason}", phase.name()));
    HookOutcome::Failed(status)
}

async fn instantiate(pre: &ExtensionPre, memory: u64) -> wasmtime::Result<(Store<ExtState>, Instance)> {
    let output = Arc::new(Mutex::new(LineBuffer::default()));
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(Stdio::new(&output, Role::Stdout)).stderr(Stdio::new(&output, Role::Stderr));
    let state = ExtState { wasi: wasi.build(), table: ResourceTable::new(), call: None, output, cap: MemoryCap::new(memory) };
    let mut store = Store::new(pre.pre.engine(), state);
    store.limiter(|s| &mut s.cap);
    yield_every_tick(&mut store);
    let instance = pre.pre.instantiate_async(&mut store).await?;
    Ok((store, instance))
}

async fn call_hook(live: &mut Live, phase: Phase, func_index: &ComponentExportIndex) -> wasmtime::Result<HookOutcome> {
    let func = match live.hooks[phase as usize] {
        Some(func) => func,
        None => {
            let func = live.instance.get_typed_func(&mut live.store, func_index)?;
            *live.hooks[phase as usize].insert(func)
        }
    };
    // The methods act on the store's current call; the handle only has to be a borrow.
    let (result,) = func.call_async(&mut live.store, (Resource::new_borrow(0),)).await?;
    Ok(match result {
        wit::HookResult::Ok => HookOutcome::Ok,
        wit::HookResult::Declined => HookOutcome::Declined,
        wit::HookResult::Done => HookOutcome::Done,
        wit::HookResult::HttpStatus(status) => HookOutcome::Status(status),
    })
}

// -- the imports ------------------------------------------------------------------------

impl ExtState {
    fn call(&mut self) -> wasmtime::Result<&mut HookCall> {
        self.call.as_mut().ok_or_else(|| wasmtime::format_err!("request used outside a hook call"))
    }

    fn field(&mut self, field: Field) -> wasmtime::Result<Option<String>> {
        Ok(self.call()?.req.field(field))
    }

    fn set_field(&mut self, field: Field, value: Option<&str>) -> wasmtime::Result<Result<(), wit::Error>> {
        if let Some(v) = value {
            if let Err(e) = checked(v) {
                return Ok(Err(e));
            }
        }
        self.call()?.req.set_field(field, value);
        Ok(Ok(()))
    }

    fn table_write(
        &mut self,
        table: wit::Table,
        name: &str,
        value: &str,
        write: fn(&mut dyn HttpdRequest, Table, &str, &str),
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        if let Err(e) = checked(name).and_then(|()| checked(value)) {
            return Ok(Err(e));
        }
        if name.is_empty() {
            return Ok(Err(wit::Error::InvalidValue("an empty name".into())));
        }
        write(self.call()?.req.as_mut(), table_of(table), name, value);
        Ok(Ok(()))
    }
}

/// Refuses values that would split a header line or cut a C string.
fn checked(value: &str) -> Result<(), wit::Error> {
    match value.bytes().find(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Some(b) => Err(wit::Error::InvalidValue(format!("the value contains byte {b:#04x} (CR, LF and NUL are refused)"))),
        None => Ok(()),
    }
}

fn table_of(table: wit::Table) -> Table {
    match table {
        wit::Table::HeadersIn => Table::HeadersIn,
        wit::Table::HeadersOut => Table::HeadersOut,
        wit::Table::ErrHeadersOut => Table::ErrHeadersOut,
        wit::Table::Notes => Table::Notes,
        wit::Table::SubprocessEnv => Table::SubprocessEnv,
    }
}

fn level_of(level: wit::LogLevel) -> LogLevel {
    use wit::LogLevel as L;
    match level {
        L::Emerg => LogLevel::Emerg,
        L::Alert => LogLevel::Alert,
        L::Crit => LogLevel::Crit,
        L::Error => LogLevel::Error,
        L::Warn => LogLevel::Warn,
        L::Notice => LogLevel::Notice,
        L::Info => LogLevel::Info,
        L::Debug => LogLevel::Debug,
        L::Trace1 => LogLevel::Trace1,
        L::Trace2 => LogLevel::Trace2,
        L::Trace3 => LogLevel::Trace3,
        L::Trace4 => LogLevel::Trace4,
        L::Trace5 => LogLevel::Trace5,
        L::Trace6 => LogLevel::Trace6,
        L::Trace7 => LogLevel::Trace7,
        L::Trace8 => LogLevel::Trace8,
    }
}

type R = Resource<RequestRef>;
type Res<T> = wasmtime::Result<T>;

impl wit::Host for ExtState {}

impl wit::HostRequest for ExtState {
    fn method(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::Method)?.unwrap_or_default())
    }
    fn uri(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::Uri)?.unwrap_or_default())
    }
    fn unparsed_uri(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::UnparsedUri)?.unwrap_or_default())
    }
    fn the_request(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::TheRequest)?.unwrap_or_default())
    }
    fn args(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::Args)
    }
    fn protocol(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::Protocol)?.unwrap_or_default())
    }
    fn hostname(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::Hostname)
    }
    fn port(&mut self, _: R) -> Res<u16> {
        Ok(self.call()?.req.port())
    }
    fn path_info(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::PathInfo)
    }
    fn filename(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::Filename)
    }
    fn canonical_filename(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::CanonicalFilename)
    }
    fn handler(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::Handler)
    }
    fn content_type(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::ContentType)
    }
    fn content_encoding(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::ContentEncoding)
    }
    fn status(&mut self, _: R) -> Res<u16> {
        Ok(self.call()?.req.status())
    }
    fn user(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::User)
    }
    fn ap_auth_type(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::ApAuthType)
    }
    fn useragent_ip(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::UseragentIp)?.unwrap_or_default())
    }
    fn is_https(&mut self, _: R) -> Res<bool> {
        Ok(self.call()?.req.is_https())
    }
    fn is_initial_req(&mut self, _: R) -> Res<bool> {
        Ok(self.call()?.req.is_initial_req())
    }
    fn document_root(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::DocumentRoot)?.unwrap_or_default())
    }
    fn server_name(&mut self, _: R) -> Res<String> {
        Ok(self.field(Field::ServerName)?.unwrap_or_default())
    }
    fn log_id(&mut self, _: R) -> Res<Option<String>> {
        self.field(Field::LogId)
    }

    fn set_uri(&mut self, _: R, value: String) -> Res<Result<(), wit::Error>> {
        if !value.starts_with('/') {
            return Ok(Err(wit::Error::InvalidValue("a URI path starts with /".into())));
        }
        self.set_field(Field::Uri, Some(&value))
    }
    fn set_args(&mut self, _: R, value: Option<String>) -> Res<Result<(), wit::Error>> {
        self.set_field(Field::Args, value.as_deref())
    }
    fn set_filename(&mut self, _: R, value: String) -> Res<Result<(), wit::Error>> {
        self.set_field(Field::Filename, Some(&value))
    }
    fn set_handler(&mut self, _: R, value: Option<String>) -> Res<Result<(), wit::Error>> {
        self.set_field(Field::Handler, value.as_deref())
    }
    fn set_content_type(&mut self, _: R, value: String) -> Res<Result<(), wit::Error>> {
        self.set_field(Field::ContentType, Some(&value))
    }
    fn set_status(&mut self, _: R, value: u16) -> Res<Result<(), wit::Error>> {
        if !(100..=599).contains(&value) {
            return Ok(Err(wit::Error::InvalidValue(format!("{value} is not an HTTP status"))));
        }
        self.call()?.req.set_status(value);
        Ok(Ok(()))
    }
    fn set_user(&mut self, _: R, value: Option<String>) -> Res<Result<(), wit::Error>> {
        self.set_field(Field::User, value.as_deref())
    }

    fn module_config(&mut self, _: R) -> Res<Option<String>> {
        Ok(self.call()?.config.as_deref().map(str::to_owned))
    }
    fn serial(&mut self, _: R) -> Res<u64> {
        Ok(self.call()?.serial)
    }

    fn table_get(&mut self, _: R, t: wit::Table, name: String) -> Res<Option<String>> {
        Ok(self.call()?.req.table_get_all(table_of(t), &name).into_iter().next())
    }
    fn table_get_all(&mut self, _: R, t: wit::Table, name: String) -> Res<Vec<String>> {
        Ok(self.call()?.req.table_get_all(table_of(t), &name))
    }
    fn table_set(&mut self, _: R, t: wit::Table, name: String, value: String) -> Res<Result<(), wit::Error>> {
        self.table_write(t, &name, &value, |r, t, n, v| r.table_set(t, n, v))
    }
    fn table_add(&mut self, _: R, t: wit::Table, name: String, value: String) -> Res<Result<(), wit::Error>> {
        self.table_write(t, &name, &value, |r, t, n, v| r.table_add(t, n, v))
    }
    fn table_merge(&mut self, _: R, t: wit::Table, name: String, value: String) -> Res<Result<(), wit::Error>> {
        self.table_write(t, &name, &value, |r, t, n, v| r.table_merge(t, n, v))
    }
    fn table_unset(&mut self, _: R, t: wit::Table, name: String) -> Res<()> {
        self.call()?.req.table_unset(table_of(t), &name);
        Ok(())
    }
    fn table_entries(&mut self, _: R, t: wit::Table) -> Res<Vec<(String, String)>> {
        Ok(self.call()?.req.table_entries(table_of(t)))
    }

    fn read_body(&mut self, _: R, max: u32) -> Res<Result<Vec<u8>, wit::Error>> {
        let call = self.call()?;
        if !call.phase.reads_body() {
            let msg = format!("the request body can be read in access-checker and handler, not {}", call.phase.name());
            return Ok(Err(wit::Error::WrongPhase(msg)));
        }
        let mut buf = vec![0u8; (max as usize).min(1 << 20)];
        match call.req.read_body(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Ok(buf))
            }
            Err(BodyError { message, .. }) => Ok(Err(wit::Error::Io(message))),
        }
    }
    fn write_body(&mut self, _: R, data: Vec<u8>) -> Res<Result<(), wit::Error>> {
        let call = self.call()?;
        if call.phase != Phase::Handler {
            let msg = format!("the response body can be written in handler, not {}", call.phase.name());
            return Ok(Err(wit::Error::WrongPhase(msg)));
        }
        Ok(call.req.write_body(&data).map_err(|e| wit::Error::Io(e.to_string())))
    }

    fn log(&mut self, _: R, level: wit::LogLevel, message: String) -> Res<()> {
        self.call()?.req.log(level_of(level), &message);
        Ok(())
    }

    fn drop(&mut self, _: R) -> Res<()> {
        // The host owns the request resource and deletes it after the hook call.
        Ok(())
    }
}
