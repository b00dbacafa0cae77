//! Extension modules (`WasmApacheModule`): components built against the `apache:httpd` WIT
//! world (wit/apache-httpd.wit) that take part in httpd's request phases.
//!
//! A component exports one interface per phase it implements; [`ExtensionPre`] remembers
//! which, so a phase it does not export is never called. A request's first hook call for a
//! module gives it an instance ([`RequestInstances`]) that stays with the request until it
//! ends, so a guest keeps state from one phase to the next. Under [`Scope::Request`] that
//! instance is new and is dropped with the request; under [`Scope::Server`] it is taken from
//! the instances the module's pool keeps in this process and returned afterwards, so its
//! memory (caches, parsed configuration) outlives the request and only a request that finds
//! none pays for the instantiation. Before it goes back, the instance's `request-end` export
//! (if any) is called, so the guest can drop what belonged to the request.
//!
//! The same instance serves the module's body filters ([`FilterKind`]) for the request, so
//! a hook can decide what its filter will do.
//!
//! Re-entry: while a guest call runs, its calls may make httpd run a subrequest or an output
//! filter (`write-body` passes the body through the filters), which needs the same module
//! again. The instance is busy, so that nested call gets a second instance of the module
//! for this request, kept for later nested calls (a filter called during every
//! `write-body` keeps its state); an instance is never entered twice.

mod imports;

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Instance, InstancePre, Linker, Resource, ResourceTable, TypedFunc};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::config::ExtensionRef;
use crate::exchange::{LineBuffer, Role, Stdio};
use crate::failure::{one_line, Failure};
use crate::limits::{deadline_message, run_with_deadline, yield_every_tick, Limits, MemoryCap};
use crate::phase::{
    export_name, exports_provider, is_extension, AuthzOutcome, ChunkEnd, FilterKind, FilterOutcome, HookOutcome, Phase, Provides, Scope,
    Stage, REQUEST_END,
};
use crate::request::{Field, HttpdRequest, LogLevel};
use crate::slot::ModuleSlot;
use crate::stats::{Call, ModuleStats};
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

/// Checks at configuration time that a file is an extension module: a component that
/// exports at least one phase or filter of the apache:httpd world and imports only what the
/// host provides.
pub fn check_module(path: &str, info: &WasmInfo) -> Result<(), ValidateError> {
    if info.kind != WasmKind::Component || !is_extension(&info.exports) {
        let names: Vec<String> =
            Phase::ALL.iter().map(|p| p.name()).chain(Provides::ALL.iter().map(|p| p.name())).map(export_name).collect();
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

/// Checks at configuration time that a file can serve a definition of `provides`: an
/// extension module that exports its interface.
pub fn check_provider_module(provides: Provides) -> impl Fn(&str, &WasmInfo) -> Result<(), ValidateError> {
    move |path, info| {
        if info.kind != WasmKind::Component || !exports_provider(&info.exports, provides) {
            return Err(ValidateError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "it does not export {}: a {} module is a component built for the apache:httpd {}-module world",
                    export_name(provides.name()),
                    provides.directive(),
                    provides.name()
                ),
            });
        }
        crate::validate::check_component_imports(path, info, &[IMPORTS])
    }
}

/// The interface extension modules import from the host.
const IMPORTS: &str = "apache:httpd/types@0.1.";

/// The host side of the `request` resource: an entry in the store's resource table, made for
/// one hook call (numbered) and deleted when it returns. The request itself is in
/// [`ExtState::call`].
pub struct RequestRef {
    call: u64,
}

/// One hook or filter call in progress.
struct HookCall {
    req: Box<dyn HttpdRequest>,
    stage: Stage,
    config: Option<Arc<str>>,
    /// The module called, for the shared stores granted to it.
    slot: Option<Arc<ModuleSlot>>,
    /// [`RequestInstances::serial`] of the request.
    serial: u64,
    /// This store's count of hook calls: the [`RequestRef`] made for this one carries it.
    number: u64,
}

/// Store data of an extension module instance.
pub struct ExtState {
    wasi: WasiCtx,
    table: ResourceTable,
    call: Option<HookCall>,
    /// Hook calls made on this store so far.
    calls: u64,
    /// What the guest wrote to stdout/stderr (a panic message, debug prints).
    output: Arc<Mutex<LineBuffer>>,
    cap: MemoryCap,
}

impl WasiView for ExtState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Compiled, pre-linked extension module, the phases it exports, and the instances this
/// process keeps for [`Scope::Server`].
pub struct ExtensionPre {
    pre: InstancePre<ExtState>,
    phases: [Option<ComponentExportIndex>; Phase::COUNT],
    filters: [Option<ComponentExportIndex>; FilterKind::COUNT],
    authz: Option<ComponentExportIndex>,
    request_end: Option<ComponentExportIndex>,
    /// Kept instances, the most recently returned last.
    kept: Mutex<Vec<Live>>,
    /// How many instances the pool keeps when the scope names no maximum.
    default_max: u32,
}

/// Adds the host's apache:httpd imports and WASI to a linker for extension modules.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<ExtState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wit::add_to_linker::<ExtState, HasSelf<ExtState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// Pre-links `component`; `default_max` is the pool's size when the scope names none.
pub(crate) fn load(linker: &Linker<ExtState>, component: &Component, default_max: u32) -> wasmtime::Result<ExtensionPre> {
    let export = |interface: &str| {
        let iface = component.get_export_index(None, &export_name(interface))?;
        component.get_export_index(Some(&iface), interface)
    };
    let mut phases = [None; Phase::COUNT];
    for phase in Phase::ALL {
        phases[phase as usize] = export(phase.name());
    }
    let filters = FilterKind::ALL.map(|kind| export(kind.name()));
    Ok(ExtensionPre {
        pre: linker.instantiate_pre(component)?,
        phases,
        filters,
        authz: export(Provides::Authz.name()),
        request_end: export(REQUEST_END),
        kept: Mutex::new(Vec::new()),
        default_max: default_max.max(1),
    })
}

/// A phase's export, typed (looked up and checked once per instance).
type HookFunc = TypedFunc<(Resource<RequestRef>,), (wit::HookResult,)>;
/// A filter's export, typed (checked once per instance).
type FilterFunc = TypedFunc<(Resource<RequestRef>, Vec<u8>, wit::ChunkEnd), (wit::FilterResult,)>;
/// The same, called with the piece borrowed.
type BorrowedFilterFunc<'a> = TypedFunc<(Resource<RequestRef>, &'a [u8], wit::ChunkEnd), (wit::FilterResult,)>;
/// An authorization provider's export, typed (checked once per instance).
type AuthzFunc = TypedFunc<(Resource<RequestRef>, String), (wit::AuthzResult,)>;
/// The `request-end` export, typed (checked once per instance).
type RequestEndFunc = TypedFunc<(u64,), ()>;

/// An instance of an extension module.
struct Live {
    store: Store<ExtState>,
    instance: Instance,
    hooks: [Option<HookFunc>; Phase::COUNT],
    filters: [Option<FilterFunc>; FilterKind::COUNT],
    authz: Option<AuthzFunc>,
    request_end: Option<RequestEndFunc>,
    scope: Scope,
    /// The limits of its last call, which its `request-end` call runs under too.
    limits: Limits,
    /// A trapped instance is not entered again.
    failed: bool,
    /// Counts it among its module's instances (server-status) while it exists.
    counted: Option<crate::stats::InstanceToken>,
}

impl ExtensionPre {
    /// An instance for a request: a kept one (server scope) if one has the same memory
    /// limit, else a new one. `Err` is the reason and the status to answer with.
    fn instance(&self, limits: Limits, scope: Scope, stats: Option<&'static ModuleStats>) -> Result<Live, (String, Failure)> {
        if let Scope::Server { .. } = scope {
            if let Some(live) = self.take_kept(limits.memory) {
                return Ok(Live { scope, limits, ..live });
            }
        }
        match run_with_deadline(limits.timeout, instantiate(self, limits.memory)) {
            Ok(Some(Ok((store, instance)))) => Ok(Live {
                store,
                instance,
                hooks: [None; Phase::COUNT],
                filters: [None; FilterKind::COUNT],
                authz: None,
                request_end: None,
                scope,
                limits,
                failed: false,
                counted: stats.map(ModuleStats::instance),
            }),
            Ok(Some(Err(e))) => Err((one_line(&e), Failure::Unavailable)),
            Ok(None) => Err((deadline_message(limits.timeout), Failure::Timeout)),
            Err(reason) => Err((reason, Failure::Trap)),
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        // Lives are pushed and popped whole; a panic elsewhere cannot leave one half-moved.
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most recently returned instance, if its store has the same memory limit (one
    /// that has not is dropped).
    fn take_kept(&self, memory: u64) -> Option<Live> {
        let live = self.kept().pop()?;
        if let Some(counted) = &live.counted {
            counted.stats().pooled(false);
        }
        (live.store.data().cap.limit() == memory).then_some(live)
    }

    /// Keeps `live` for a later request, unless the pool already holds `max`.
    fn give_back(&self, live: Live, max: u32) {
        let spare = {
            let mut kept = self.kept();
            if kept.len() < max as usize {
                if let Some(counted) = &live.counted {
                    counted.stats().pooled(true);
                }
                kept.push(live);
                None
            } else {
                Some(live)
            }
        };
        // Dropped outside the lock.
        drop(spare);
    }

    /// Instances kept for later requests (tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn kept_count(&self) -> usize {
        self.kept().len()
    }
}

/// The extension instances of one request (its subrequests and internal redirects
/// included), created or taken as phases need them. Hook calls reach it through a shared
/// reference: a nested call (see the module documentation) may arrive while another runs.
pub struct RequestInstances {
    modules: RefCell<Vec<InUse>>,
    /// Unique in this process; what the guest's `request.serial` returns.
    serial: u64,
}

/// Where a filter's body goes: the place of the instance its first piece went to.
#[derive(Debug, Default)]
pub struct FilterStream {
    place: Option<usize>,
}

/// Marks a place busy until dropped.
struct Busy<'a> {
    modules: &'a RefCell<Vec<InUse>>,
    place: usize,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.modules.borrow_mut()[self.place].busy = false;
    }
}

/// An instance of a module for this request.
struct InUse {
    slot: Arc<ModuleSlot>,
    /// `None` before its first call, or after its instantiation failed.
    live: Option<Live>,
    /// One of its calls is running.
    busy: bool,
}

/// Numbers requests, so that a reused instance can tell a new request from the last one.
static NEXT_SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Default for RequestInstances {
    fn default() -> Self {
        let serial = NEXT_SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        RequestInstances { modules: RefCell::new(Vec::new()), serial }
    }
}

/// What every call of an extension module is made with: the module as the section names it
/// (its file and config string), and the section's limits and instance scope.
#[derive(Clone, Copy, Debug)]
pub struct CallContext<'a> {
    pub module: &'a ExtensionRef,
    pub limits: Limits,
    pub scope: Scope,
}

/// A piece of a body handed to a filter, and where it ends.
#[derive(Clone, Copy)]
struct Piece<'a> {
    data: &'a [u8],
    at: ChunkEnd,
}

impl RequestInstances {
    /// Calls `module`'s export for `phase`, instantiating the module first (or taking a kept
    /// one, in [`Scope::Server`]) if this request has not used it yet.
    /// Declines if the module does not export the phase. Failures are logged through
    /// `req`, naming the module and the phase.
    pub fn run(&self, ctx: CallContext<'_>, phase: Phase, req: Box<dyn HttpdRequest>) -> HookOutcome {
        let serial = self.serial;
        self.lend(ctx, Stage::Hook(phase), None, req, HookOutcome::Failed, |live, index, req| live.hook(ctx, phase, index, serial, req))
        .unwrap_or(HookOutcome::Declined)
    }

    /// Calls `module`'s filter of `kind` with a piece of the body, on the same instance as
    /// its hooks for this request. A module that does not export the filter passes.
    /// `stream` is the caller's, one per body: every piece of a body goes to the instance
    /// its first piece went to (an instance busy in a hook when the first piece came, as a
    /// handler writing its own body, leaves the body to a second instance, for all its pieces).
    pub fn filter(
        &self,
        ctx: CallContext<'_>,
        kind: FilterKind,
        stream: &mut FilterStream,
        req: Box<dyn HttpdRequest>,
        data: &[u8],
        at: ChunkEnd,
    ) -> FilterOutcome {
        let serial = self.serial;
        let piece = Piece { data, at };
        self.lend(ctx, Stage::Filter(kind), Some(&mut stream.place), req, FilterOutcome::Failed, |live, index, req| {
            live.filter(ctx, kind, index, serial, req, piece)
        })
        .unwrap_or(FilterOutcome::Pass)
    }

    /// Asks `module`'s authorization provider about the request, with the arguments of the
    /// `Require` line that names it. A failure (logged) is a general error.
    pub fn authz(&self, ctx: CallContext<'_>, req: Box<dyn HttpdRequest>, line: &str) -> AuthzOutcome {
        let serial = self.serial;
        let failed = |_| AuthzOutcome::GeneralError;
        self.lend(ctx, Stage::Authz, None, req, failed, |live, index, req| live.authz(ctx, index, serial, req, line))
            .unwrap_or(AuthzOutcome::GeneralError)
    }

    /// Runs `call` on an idle instance of `module` for this request: the first one, made
    /// (or taken from the pool) on first use, or another one when this call is nested in a
    /// call of the first (see the module documentation); for a filter's body, the one its
    /// first piece went to (`pinned`). `None` if the module does not export `stage`;
    /// `failed(status)` (logged) if it has no instance.
    fn lend<T>(
        &self,
        ctx: CallContext<'_>,
        stage: Stage,
        pinned: Option<&mut Option<usize>>,
        mut req: Box<dyn HttpdRequest>,
        failed: impl FnOnce(Failure) -> T,
        call: impl FnOnce(&mut Live, ComponentExportIndex, Box<dyn HttpdRequest>) -> T,
    ) -> Option<T> {
        let CallContext { module, limits, scope } = ctx;
        let path = module.slot.name();
        let pre = match module.slot.ready() {
            Ok(loaded) => match loaded.downcast_ref::<ExtensionPre>() {
                Some(pre) => pre,
                None => {
                    req.log(LogLevel::Error, &format!("{path}: is a program (WasmModule), not an extension module"));
                    return Some(failed(Failure::Trap));
                }
            },
            Err(reason) => {
                req.log(LogLevel::Error, &format!("{path}: {reason}"));
                return Some(failed(Failure::Trap));
            }
        };
        let index = match stage {
            Stage::Hook(phase) => pre.phases[phase as usize],
            Stage::Filter(kind) => pre.filters[kind as usize],
            Stage::Authz => pre.authz,
        }?;
        // The borrow ends here: the guest call below may lead back into `lend`. Places are
        // never removed during the request, so `place` stays valid.
        let (place, kept) = {
            let mut modules = self.modules.borrow_mut();
            let free = |m: &InUse| !m.busy && Arc::ptr_eq(&m.slot, &module.slot);
            let place = match pinned.as_deref() {
                Some(&Some(place)) if free(&modules[place]) => Some(place),
                Some(&Some(_)) => {
                    drop(modules);
                    req.log(LogLevel::Error, &format!("{path}: {}: its instance is busy (the filter was entered from its own call)", stage.name()));
                    return Some(failed(Failure::Trap));
                }
                _ => modules.iter().position(free),
            };
            match place {
                Some(place) => {
                    modules[place].busy = true;
                    (place, modules[place].live.take())
                }
                None => {
                    modules.push(InUse { slot: module.slot.clone(), live: None, busy: true });
                    (modules.len() - 1, None)
                }
            }
        };
        if let Some(pinned) = pinned {
            *pinned = Some(place);
        }
        // Frees the place however this call ends, a panic included.
        let busy = Busy { modules: &self.modules, place };
        let mut live = match kept.map_or_else(|| pre.instance(limits, scope, module.slot.stats()), Ok) {
            Ok(live) => live,
            Err((reason, failure)) => {
                drop(busy);
                req.log(LogLevel::Error, &format!("{path}: {}: cannot instantiate: {reason}", stage.name()));
                return Some(failed(failure));
            }
        };
        // A trapped instance is not entered again (its failure was logged).
        let result = if live.failed { failed(Failure::Trap) } else { call(&mut live, index, req) };
        self.modules.borrow_mut()[place].live = Some(live);
        drop(busy);
        Some(result)
    }

    /// Ends the request: kept ([`Scope::Server`]) instances learn it through their
    /// `request-end` export and go back to their module's pool; the others are dropped.
    /// `log` writes the guest's output and failures (the request's hooks are over).
    pub fn end(mut self, log: &mut dyn FnMut(LogLevel, &str)) {
        self.end_in_place(log);
    }

    /// [`RequestInstances::end`] for an owner that cannot give the value away (it is
    /// dropped in place): the instances are ended, and none is left.
    pub fn end_in_place(&mut self, log: &mut dyn FnMut(LogLevel, &str)) {
        for in_use in std::mem::take(self.modules.get_mut()) {
            if let (Some(live), Some(pre)) = (in_use.live, in_use.slot.ready().ok().and_then(|l| l.downcast_ref::<ExtensionPre>())) {
                finish(pre, in_use.slot.name(), live, self.serial, log);
            }
        }
    }
}

/// A request is done with `live`: keep it for a later request (server scope, healthy,
/// `request-end` returned) or drop it.
fn finish(pre: &ExtensionPre, path: &str, mut live: Live, serial: u64, log: &mut dyn FnMut(LogLevel, &str)) {
    let Scope::Server { max } = live.scope else { return };
    if live.failed {
        return;
    }
    if let Some(index) = &pre.request_end {
        if !live.end_request(path, index, serial, log) {
            return;
        }
    }
    pre.give_back(live, max.unwrap_or(pre.default_max));
}

impl Live {
    /// One hook call, its answer checked against the phase.
    fn hook(&mut self, ctx: CallContext<'_>, phase: Phase, index: ComponentExportIndex, serial: u64, req: Box<dyn HttpdRequest>) -> HookOutcome {
        let stage = Stage::Hook(phase);
        let invoke = async |live: &mut Live, r: Resource<RequestRef>| {
            let func = match live.hooks[phase as usize] {
                Some(func) => func,
                None => *live.hooks[phase as usize].insert(live.instance.get_typed_func(&mut live.store, index)?),
            };
            let (result,) = func.call_async(&mut live.store, (r,)).await?;
            Ok(match result {
                wit::HookResult::Ok => HookOutcome::Ok,
                wit::HookResult::Declined => HookOutcome::Declined,
                wit::HookResult::Done => HookOutcome::Done,
                wit::HookResult::HttpStatus(status) => HookOutcome::Status(status),
            })
        };
        self.enter(ctx, stage, serial, req, invoke, |outcome, req| phase.check(outcome, || req.field(Field::Filename).is_some()))
            .unwrap_or_else(HookOutcome::Failed)
    }

    /// One filter call with a piece of the body, its answer checked.
    fn filter(
        &mut self,
        ctx: CallContext<'_>,
        kind: FilterKind,
        index: ComponentExportIndex,
        serial: u64,
        req: Box<dyn HttpdRequest>,
        piece: Piece<'_>,
    ) -> FilterOutcome {
        let Piece { data, at } = piece;
        let stage = Stage::Filter(kind);
        let at = match at {
            ChunkEnd::More => wit::ChunkEnd::More,
            ChunkEnd::Flush => wit::ChunkEnd::Flush,
            ChunkEnd::End => wit::ChunkEnd::End,
        };
        let invoke = async |live: &mut Live, r: Resource<RequestRef>| {
            let checked = match live.filters[kind as usize] {
                Some(func) => func,
                None => *live.filters[kind as usize].insert(live.instance.get_typed_func(&mut live.store, index)?),
            };
            // SAFETY: the function's type was checked as FilterFunc, whose `Vec<u8>` and this
            // `&[u8]` are both the WIT's list<u8>: passing the piece borrowed saves a copy.
            let func = unsafe { BorrowedFilterFunc::new_unchecked(*checked.func()) };
            let (result,) = func.call_async(&mut live.store, (r, data, at)).await?;
            Ok(match result {
                wit::FilterResult::Emit(bytes) => FilterOutcome::Emit(bytes),
                wit::FilterResult::Pass => FilterOutcome::Pass,
                wit::FilterResult::HttpStatus(status) => FilterOutcome::Status(status),
            })
        };
        self.enter(ctx, stage, serial, req, invoke, |outcome, _| outcome.check()).unwrap_or_else(FilterOutcome::Failed)
    }

    /// One authorization provider call with the `Require` line's arguments.
    fn authz(&mut self, ctx: CallContext<'_>, index: ComponentExportIndex, serial: u64, req: Box<dyn HttpdRequest>, line: &str) -> AuthzOutcome {
        let invoke = async |live: &mut Live, r: Resource<RequestRef>| {
            let func = match live.authz {
                Some(func) => func,
                None => *live.authz.insert(live.instance.get_typed_func(&mut live.store, index)?),
            };
            let (result,) = func.call_async(&mut live.store, (r, line.to_owned())).await?;
            Ok(match result {
                wit::AuthzResult::Granted => AuthzOutcome::Granted,
                wit::AuthzResult::Denied => AuthzOutcome::Denied,
                wit::AuthzResult::DeniedNoUser => AuthzOutcome::DeniedNoUser,
                wit::AuthzResult::Neutral => AuthzOutcome::Neutral,
                wit::AuthzResult::GeneralError => AuthzOutcome::GeneralError,
            })
        };
        self.enter(ctx, Stage::Authz, serial, req, invoke, |outcome, _| Ok(outcome))
            .unwrap_or(AuthzOutcome::GeneralError)
    }

    /// Runs `invoke` as one guest call: a request handle in the store's table for its
    /// duration, the deadline, the guest's output logged, its answer passed through `check`.
    /// A failure is logged (naming the module and the stage) and comes back as its kind: a
    /// trap for an answer `check` refuses; for a failed call, its kind (a trap, the deadline,
    /// refused memory), and the instance is not entered again.
    fn enter<T>(
        &mut self,
        ctx: CallContext<'_>,
        stage: Stage,
        serial: u64,
        mut req: Box<dyn HttpdRequest>,
        invoke: impl AsyncFnOnce(&mut Live, Resource<RequestRef>) -> wasmtime::Result<T>,
        check: impl FnOnce(T, &dyn HttpdRequest) -> Result<T, String>,
    ) -> Result<T, Failure> {
        let CallContext { module, limits, .. } = ctx;
        let path = module.slot.name();
        self.limits = limits;
        let data = self.store.data_mut();
        data.calls += 1;
        let number = data.calls;
        let handle = match data.table.push(RequestRef { call: number }) {
            Ok(handle) => handle,
            Err(e) => {
                req.log(LogLevel::Error, &format!("{path}: {}: no request handle: {e}", stage.name()));
                return Err(Failure::Trap);
            }
        };
        let borrow = Resource::new_borrow(handle.rep());
        data.call = Some(HookCall { req, stage, config: module.config.clone(), slot: Some(module.slot.clone()), serial, number });
        let started = Instant::now();
        let (result, failure) = match run_with_deadline(limits.timeout, invoke(self, borrow)) {
            Ok(Some(result)) => {
                let failure = result.as_ref().err().map(Failure::of);
                (result, failure)
            }
            Ok(None) => (Err(wasmtime::format_err!("{}", deadline_message(limits.timeout))), Some(Failure::Timeout)),
            Err(reason) => (Err(wasmtime::format_err!("{reason}")), Some(Failure::Trap)),
        };
        if let Some(stats) = module.slot.stats() {
            stats.call(Call::Extension(stage), started.elapsed(), failure);
        }
        let data = self.store.data_mut();
        // Any use of the handle from now on is an error for the guest.
        let _ = data.table.delete(handle);
        let Some(HookCall { mut req, .. }) = data.call.take() else {
            unreachable!("the call's request is only taken here");
        };
        let lines = data.output.lock().unwrap_or_else(|p| p.into_inner()).take_lines(true);
        match result {
            Ok(value) => {
                for line in lines {
                    req.log(LogLevel::Warn, &format!("{path}: {}: {line}", stage.name()));
                }
                check(value, &*req).map_err(|reason| {
                    req.log(LogLevel::Error, &format!("{path}: {}: {reason}", stage.name()));
                    Failure::Trap
                })
            }
            Err(e) => {
                self.failed = true;
                let said = lines.join(" | ");
                let said = if said.is_empty() { String::new() } else { format!(" (guest output: {said})") };
                req.log(LogLevel::Error, &format!("{path}: {}: {}{said}", stage.name(), one_line(&e)));
                Err(failure.unwrap_or(Failure::Trap))
            }
        }
    }

    /// Calls the guest's `request-end(serial)`; false (and logged) if it failed, in which
    /// case the instance must not serve another request.
    fn end_request(&mut self, path: &str, index: &ComponentExportIndex, serial: u64, log: &mut dyn FnMut(LogLevel, &str)) -> bool {
        let call = async {
            let func = match self.request_end {
                Some(func) => func,
                None => *self.request_end.insert(self.instance.get_typed_func(&mut self.store, index)?),
            };
            func.call_async(&mut self.store, (serial,)).await
        };
        let result = match run_with_deadline(self.limits.timeout, call) {
            Ok(Some(result)) => result,
            Ok(None) => Err(wasmtime::format_err!("{}", deadline_message(self.limits.timeout))),
            Err(reason) => Err(wasmtime::format_err!("{reason}")),
        };
        let lines = self.store.data().output.lock().unwrap_or_else(|p| p.into_inner()).take_lines(true);
        match result {
            Ok(()) => {
                for line in lines {
                    log(LogLevel::Warn, &format!("{path}: {REQUEST_END}: {line}"));
                }
                true
            }
            Err(e) => {
                let said = lines.join(" | ");
                let said = if said.is_empty() { String::new() } else { format!(" (guest output: {said})") };
                log(LogLevel::Error, &format!("{path}: {REQUEST_END}: {}{said}", one_line(&e)));
                false
            }
        }
    }
}

async fn instantiate(pre: &ExtensionPre, memory: u64) -> wasmtime::Result<(Store<ExtState>, Instance)> {
    let output = Arc::new(Mutex::new(LineBuffer::default()));
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(Stdio::new(&output, Role::Stdout)).stderr(Stdio::new(&output, Role::Stderr));
    let state =
        ExtState { wasi: wasi.build(), table: ResourceTable::new(), call: None, calls: 0, output, cap: MemoryCap::new(memory) };
    let mut store = Store::new(pre.pre.engine(), state);
    store.limiter(|s| &mut s.cap);
    yield_every_tick(&mut store);
    let instance = pre.pre.instantiate_async(&mut store).await?;
    Ok((store, instance))
}
