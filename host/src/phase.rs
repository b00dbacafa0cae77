//! The request phases, body filters and providers an extension module can take part in, the
//! names it exports them under, and what a guest's answer means in each. [`Phase::ALL`],
//! [`FilterKind::ALL`] and [`Provides::ALL`] are the one list of each: mod_wasm registers its
//! httpd hooks from the first and its definitions' directives from the last, the host finds
//! exports by their names, and a unit test checks that the WIT file and the Rust SDK (its
//! bindings, its `Module` trait and its export macro) name exactly these.

use crate::failure::Failure;

/// A request phase, in httpd's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    PostReadRequest,
    QuickHandler,
    PreTranslateName,
    TranslateName,
    MapToStorage,
    HeaderParser,
    AccessChecker,
    CheckUserId,
    AuthChecker,
    TypeChecker,
    Fixups,
    InsertFilter,
    Handler,
    LogTransaction,
}

/// The statuses a hook, filter or guest may answer with: httpd sends its redirect or error
/// response for them. The one statement of the range.
pub const ANSWER_STATUSES: std::ops::RangeInclusive<u16> = 300..=599;

/// The HTTP statuses httpd can send: the one statement of that range.
pub const HTTP_STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

/// `status` as an HTTP status httpd can send, or `fallback`.
pub fn http_status(status: i32, fallback: u16) -> u16 {
    u16::try_from(status).ok().filter(|s| HTTP_STATUSES.contains(s)).unwrap_or(fallback)
}

/// The phases a set of modules exports, as bits ([`Phase::bit`]).
pub type PhaseSet = u16;

/// What a hook call tells httpd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Ok,
    Declined,
    Done,
    Status(u16),
    /// The guest failed (logged); [`Failure::status`] is the answer.
    Failed(Failure),
}

impl Phase {
    pub const COUNT: usize = 14;
    /// Every phase; `ALL[p as usize] == p`.
    pub const ALL: [Phase; Phase::COUNT] = [
        Phase::PostReadRequest,
        Phase::QuickHandler,
        Phase::PreTranslateName,
        Phase::TranslateName,
        Phase::MapToStorage,
        Phase::HeaderParser,
        Phase::AccessChecker,
        Phase::CheckUserId,
        Phase::AuthChecker,
        Phase::TypeChecker,
        Phase::Fixups,
        Phase::InsertFilter,
        Phase::Handler,
        Phase::LogTransaction,
    ];

    /// The WIT interface (and function) name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::PostReadRequest => "post-read-request",
            Phase::QuickHandler => "quick-handler",
            Phase::PreTranslateName => "pre-translate-name",
            Phase::TranslateName => "translate-name",
            Phase::MapToStorage => "map-to-storage",
            Phase::HeaderParser => "header-parser",
            Phase::AccessChecker => "access-checker",
            Phase::CheckUserId => "check-user-id",
            Phase::AuthChecker => "auth-checker",
            Phase::TypeChecker => "type-checker",
            Phase::Fixups => "fixups",
            Phase::InsertFilter => "insert-filter",
            Phase::Handler => "handler",
            Phase::LogTransaction => "log-transaction",
        }
    }

    /// A bit of a [`PhaseSet`].
    pub fn bit(self) -> PhaseSet {
        1 << (self as u16)
    }

    /// httpd's RUN_FIRST phases end at the first module that answers `ok`; the others
    /// (RUN_ALL) go on to the next module.
    pub fn run_first(self) -> bool {
        use Phase::*;
        matches!(
            self,
            QuickHandler | PreTranslateName | TranslateName | MapToStorage | CheckUserId | AuthChecker | TypeChecker | Handler
        )
    }

    /// Whether `ok` here means the guest wrote the whole response (handler, quick-handler).
    pub fn serves(self) -> bool {
        matches!(self, Phase::QuickHandler | Phase::Handler)
    }

    /// Whether the guest may read the request body in this phase.
    pub(crate) fn reads_body(self) -> bool {
        matches!(self, Phase::AccessChecker | Phase::QuickHandler | Phase::Handler)
    }

    /// What `done` means in this phase, if anything: the response is complete (the phases
    /// that serve), or in pre-translate-name that httpd must not decode the URI.
    fn takes_done(self) -> bool {
        self.serves() || self == Phase::PreTranslateName
    }

    /// Phases whose hook cannot stop the request with a status: the response is gone
    /// (log-transaction), or httpd ignores what the hook returns (insert-filter).
    fn takes_status(self) -> bool {
        !matches!(self, Phase::LogTransaction | Phase::InsertFilter)
    }

    /// Checks a guest's answer against what httpd makes of it in this phase (`has_filename`:
    /// whether the request is mapped to a file now). `Err` says why it has no meaning here;
    /// the request then fails with 500 (the response is gone in log-transaction, so there it
    /// is only logged).
    pub(crate) fn check(self, outcome: HookOutcome, has_filename: impl FnOnce() -> bool) -> Result<HookOutcome, String> {
        match outcome {
            HookOutcome::Ok if self == Phase::TranslateName && !has_filename() => {
                Err("returned ok without setting a filename (set-filename first, or decline to let httpd map the URI)".into())
            }
            HookOutcome::Done if !self.takes_done() => Err(format!(
                "returned done, which means \"the response is complete\" and only handler and quick-handler can complete \
                 one (or, in pre-translate-name, \"do not decode the URI\"), not {}",
                self.name()
            )),
            HookOutcome::Status(status) if self == Phase::LogTransaction => {
                Err(format!("returned http-status({status}) in log-transaction, after the response was sent"))
            }
            HookOutcome::Status(status) if self == Phase::PreTranslateName && status < 400 => Err(format!(
                "returned http-status({status}) in pre-translate-name, where httpd acts only on errors (400-599): \
                 redirect from translate-name or later"
            )),
            HookOutcome::Status(status) if !self.takes_status() => Err(format!(
                "returned http-status({status}) in {}, whose answer httpd ignores: decide the status in an earlier \
                 phase (access-checker, fixups)",
                self.name()
            )),
            HookOutcome::Status(status) if !ANSWER_STATUSES.contains(&status) => Err(format!(
                "returned http-status({status}): a hook's status must be a redirection or an error (300-599); \
                 for a 2xx response set-status and return ok"
            )),
            outcome => Ok(outcome),
        }
    }
}

/// Where a module's hooks run among all modules' hooks of a phase: httpd's APR_HOOK_FIRST,
/// APR_HOOK_MIDDLE or APR_HOOK_LAST (the last argument of `WasmApacheModule`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HookOrder {
    First,
    #[default]
    Middle,
    Last,
}

impl HookOrder {
    pub const COUNT: usize = 3;
    /// Every position, in the order httpd runs them; `ALL[o as usize] == o`.
    pub const ALL: [HookOrder; HookOrder::COUNT] = [HookOrder::First, HookOrder::Middle, HookOrder::Last];
}

/// A body filter an extension module can export (`WasmOutputFilter`, `WasmInputFilter`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterKind {
    Output,
    Input,
}

impl FilterKind {
    pub const COUNT: usize = 2;
    /// Every filter kind; `ALL[k as usize] == k`.
    pub const ALL: [FilterKind; FilterKind::COUNT] = [FilterKind::Output, FilterKind::Input];

    /// The WIT interface (and function) name.
    pub fn name(self) -> &'static str {
        match self {
            FilterKind::Output => "output-filter",
            FilterKind::Input => "input-filter",
        }
    }

    /// The directive that defines such a filter.
    pub fn directive(self) -> &'static str {
        match self {
            FilterKind::Output => "WasmOutputFilter",
            FilterKind::Input => "WasmInputFilter",
        }
    }
}

/// What a named definition of the configuration provides to httpd under its name: a body
/// filter, or an authorization provider (`WasmAuthzProvider`, for `Require NAME ...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provides {
    Filter(FilterKind),
    Authz,
}

impl Provides {
    /// Everything a definition can provide.
    pub const ALL: [Provides; 3] = [Provides::Filter(FilterKind::Output), Provides::Filter(FilterKind::Input), Provides::Authz];

    /// The WIT interface (and function) the module must export.
    pub fn name(self) -> &'static str {
        match self {
            Provides::Filter(kind) => kind.name(),
            Provides::Authz => "authz-provider",
        }
    }

    /// The directive that defines it.
    pub fn directive(self) -> &'static str {
        match self {
            Provides::Filter(kind) => kind.directive(),
            Provides::Authz => "WasmAuthzProvider",
        }
    }
}

/// What an authorization provider answers (httpd's `authz_status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthzOutcome {
    Granted,
    Denied,
    /// Denied because no user is known: httpd asks for one (401) when the configuration
    /// authenticates.
    DeniedNoUser,
    /// No opinion: the other `Require` lines decide.
    Neutral,
    /// The provider failed (logged): httpd answers 500.
    GeneralError,
}

/// Where a piece of a body given to a filter ends (the WIT's `chunk-end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkEnd {
    More,
    /// A FLUSH follows: the filter should emit what it can.
    Flush,
    /// The body ends: the last call.
    End,
}

/// What a filter call tells the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterOutcome {
    /// These bytes go on in place of the piece.
    Emit(Vec<u8>),
    /// The piece and the rest of the body pass unchanged; the filter is done.
    Pass,
    /// Answer with this status instead of the body.
    Status(u16),
    /// The guest failed (logged); [`Failure::status`] is the answer.
    Failed(Failure),
}

impl FilterOutcome {
    /// A status must be a redirection or an error, as for hooks.
    pub(crate) fn check(self) -> Result<FilterOutcome, String> {
        match self {
            FilterOutcome::Status(status) if !ANSWER_STATUSES.contains(&status) => {
                Err(format!("returned http-status({status}): a filter's status must be a redirection or an error (300-599)"))
            }
            outcome => Ok(outcome),
        }
    }
}

/// What a guest call is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Hook(Phase),
    Filter(FilterKind),
    Authz,
}

impl Stage {
    /// The WIT name, as log lines name it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Hook(phase) => phase.name(),
            Stage::Filter(kind) => kind.name(),
            Stage::Authz => Provides::Authz.name(),
        }
    }

    pub(crate) fn reads_body(self) -> bool {
        matches!(self, Stage::Hook(phase) if phase.reads_body())
    }

    pub(crate) fn writes_body(self) -> bool {
        matches!(self, Stage::Hook(phase) if phase.serves())
    }
}

/// The WIT package's interface prefix and version an extension module exports.
pub const PACKAGE: &str = "apache:httpd/";
pub const VERSION: &str = "@0.1.0";
/// The optional export through which a kept instance learns that its request has ended.
pub const REQUEST_END: &str = "request-end";

/// The full name of an interface the package defines (`apache:httpd/fixups@0.1.0`).
pub fn export_name(interface: &str) -> String {
    format!("{PACKAGE}{interface}{VERSION}")
}

/// How long an extension module's instance lives (`WasmApacheModuleScope`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// A new instance for every request, dropped when the request ends: nothing a guest
    /// does in one request is visible to the next.
    #[default]
    Request,
    /// Instances are kept by the child process and lent to one request at a time, the most
    /// recently returned first, like mod_lua's `LuaScope server`: the ones in use are the
    /// ones still in the CPU's caches. (A per-thread scope was measured slower: 64 threads'
    /// instances do not stay in cache.) A module's pool keeps at most `max` instances
    /// (default: the MPM's threads per child); a trapped instance is never reused.
    Server { max: Option<u32> },
}

/// The phases a component exports, from the names validation found; empty for a component
/// that does not target the apache:httpd world.
pub fn exported_phases(exports: &[String]) -> PhaseSet {
    Phase::ALL.iter().filter(|p| exports.iter().any(|e| *e == export_name(p.name()))).fold(0, |set, p| set | p.bit())
}

/// Whether a component exports what a definition of `provides` needs.
pub fn exports_provider(exports: &[String], provides: Provides) -> bool {
    exports.iter().any(|e| *e == export_name(provides.name()))
}

/// Whether a component exports any phase, filter or provider of the apache:httpd world.
pub fn is_extension(exports: &[String]) -> bool {
    exported_phases(exports) != 0 || Provides::ALL.iter().any(|p| exports_provider(exports, *p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_phase_at_its_index() {
        for (i, phase) in Phase::ALL.iter().enumerate() {
            assert_eq!(*phase as usize, i);
        }
    }

    /// The WIT file and the Rust SDK (bindings, `Module` trait, `export!` arms) spell the
    /// phases out for their own languages; they must name exactly [`Phase::ALL`].
    #[test]
    fn wit_and_sdk_name_exactly_these_phases() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let wit = std::fs::read_to_string(root.join("wit/apache-httpd.wit")).unwrap();
        let interfaces: Vec<&str> = wit
            .lines()
            .filter_map(|l| l.trim().strip_prefix("interface ")?.split_whitespace().next())
            .filter(|name| !["types", "request-end"].contains(name))
            .collect();
        let names: Vec<&str> = Phase::ALL
            .iter()
            .map(|p| p.name())
            .chain(Provides::ALL.iter().map(|p| p.name()))
            .collect();
        assert_eq!(interfaces, names, "wit/apache-httpd.wit's phase interfaces");
        for name in &names {
            assert!(wit.contains(&format!("world {name}-module {{ import types; export {name}; }}")), "{name}");
        }
        let sdk = std::fs::read_to_string(root.join("sdk-rust/src/bindings.rs")).unwrap();
        let sdk_names: Vec<String> = sdk
            .lines()
            .filter_map(|l| l.strip_prefix("export_world!(")?.split(',').next())
            .map(|name| name.replace('_', "-"))
            .filter(|name| name != "request-end")
            .collect();
        assert_eq!(sdk_names, names, "sdk-rust/src/bindings.rs's export_world! lines");

        // The SDK's `Module` trait has one method per phase, filter and provider, in this
        // order, and its `export!` macro an arm for each (and no other, but the catch-all).
        let lib = std::fs::read_to_string(root.join("sdk-rust/src/lib.rs")).unwrap();
        let snake: Vec<String> = names.iter().map(|n| n.replace('-', "_")).collect();
        let trait_body = lib.split("pub trait Module").nth(1).and_then(|rest| rest.split("\n}").next()).expect("trait Module");
        let methods: Vec<String> = trait_body
            .lines()
            .filter_map(|l| l.trim().strip_prefix("fn ")?.split('(').next().map(str::to_owned))
            .collect();
        assert_eq!(methods, snake, "sdk-rust/src/lib.rs's Module trait methods");
        let macro_body = lib.split("macro_rules! __export_phase").nth(1).and_then(|rest| rest.split("\n}").next()).expect("__export_phase");
        let arms: Vec<String> = macro_body
            .lines()
            .filter_map(|l| l.trim().strip_prefix('(')?.split(',').next().map(str::to_owned))
            .filter(|arm| arm != "$other:ident")
            .collect();
        assert_eq!(arms, snake, "sdk-rust/src/lib.rs's __export_phase! arms");
    }

    #[test]
    fn answers_without_meaning_in_a_phase_are_refused() {
        let refused = |phase: Phase, outcome| phase.check(outcome, || false).is_err();
        assert!(refused(Phase::TranslateName, HookOutcome::Ok), "ok without a filename");
        for phase in Phase::ALL {
            let takes_done = matches!(phase, Phase::Handler | Phase::QuickHandler | Phase::PreTranslateName);
            assert_eq!(refused(phase, HookOutcome::Done), !takes_done, "{phase:?} done");
            assert!(!refused(phase, HookOutcome::Declined));
            for status in [0, 1, 99, 100, 200, 204, 299, 600, 1000, 65535] {
                assert!(refused(phase, HookOutcome::Status(status)), "{phase:?} {status}");
            }
            for status in [301, 401, 403, 404, 500, 503, 599] {
                let ignored = matches!(phase, Phase::LogTransaction | Phase::InsertFilter)
                    || (phase == Phase::PreTranslateName && status < 400);
                assert_eq!(refused(phase, HookOutcome::Status(status)), ignored, "{phase:?} {status}");
            }
        }
        assert_eq!(Phase::TranslateName.check(HookOutcome::Ok, || true), Ok(HookOutcome::Ok));
        assert_eq!(Phase::Fixups.check(HookOutcome::Ok, || false), Ok(HookOutcome::Ok));
    }
}
