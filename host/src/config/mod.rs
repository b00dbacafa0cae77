//! The per-directory configuration model and its merge rules; [`values`] parses every
//! directive value.
//!
//! mod_wasm's directive handlers fill a [`DirConfig`] for each `<Location>`, `<Directory>`,
//! `<VirtualHost>` or server section; httpd merges them outer to inner with
//! [`DirConfig::merge`]. The rules are documented in docs/directives.md:
//!
//! * `WasmModule` — the inner module replaces the outer one (with its mount point).
//! * `WasmArg` — positional, so a section that sets any replaces the whole inherited list.
//! * `WasmHttpOutgoing` — a section that sets any replaces the whole inherited list.
//! * `WasmEnv` — merged by name; the inner value wins.
//! * `WasmDir` / `WasmMapDir` — merged by guest path; the inner mapping wins.
//! * `WasmEnableCGI`, `WasmMapCGIFileNames`, `WasmEntryPoint`, `WasmTimeout`,
//!   `WasmMemoryLimit`, `WasmApacheModuleScope` — the inner value if set.
//! * `WasmApacheModule` — accumulates: the outer section's modules run first, then the inner
//!   section's, each line with its own config string (one instance per file and request).

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod values;

pub use values::Origin;

use crate::limits::Limits;
use crate::phase::{exported_phases, HookOrder, Phase, PhaseSet, Scope};
use crate::slot::ModuleSlot;

/// The export a core module runs when no `WasmEntryPoint` is given.
pub const DEFAULT_ENTRY_POINT: &str = "_start";

/// A host directory made visible to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    /// The path the guest opens.
    pub guest: String,
    /// The directory on the host.
    pub host: PathBuf,
}

/// The module a section runs and where it was configured.
#[derive(Clone, Debug)]
pub struct ModuleRef {
    pub slot: Arc<ModuleSlot>,
    /// The `<Location>` path the module was configured in, if any: the CGI SCRIPT_NAME.
    pub mount: Option<String>,
}

/// An extension module as a configuration section (or a definition) names it.
#[derive(Clone, Debug)]
pub struct ExtensionRef {
    pub slot: Arc<ModuleSlot>,
    /// The optional config string of the `WasmApacheModule` line.
    pub config: Option<Arc<str>>,
    /// Where its hooks run among other modules' (filters: unused).
    pub order: HookOrder,
}

/// Settings of one configuration section; `None` means "not set here, inherit".
#[derive(Clone, Debug, Default)]
pub struct DirConfig {
    pub module: Option<ModuleRef>,
    pub args: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub enable_cgi: Option<bool>,
    pub map_cgi_file_names: Option<bool>,
    pub entry_point: Option<String>,
    /// `WasmApacheModule`s in configuration order, outer sections first.
    pub extensions: Vec<ExtensionRef>,
    /// The phases any of `extensions` exports, per [`HookOrder`] (filled in by
    /// [`DirConfig::add_extension`]).
    pub extension_phases: [PhaseSet; HookOrder::COUNT],
    /// `WasmApacheModuleScope`: how long the instances of `extensions` live.
    pub extension_scope: Option<Scope>,
    /// `WasmTimeout`.
    pub timeout: Option<std::time::Duration>,
    /// `WasmMemoryLimit`, in bytes.
    pub memory_limit: Option<u64>,
    /// `WasmHttpOutgoing`: the origins a wasi:http component may send requests to.
    pub outgoing: Option<Arc<[Origin]>>,
}

impl DirConfig {
    /// Combines an outer section (`base`) with an inner one (`add`), following the rules in
    /// the module documentation.
    pub fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        DirConfig {
            module: add.module.clone().or_else(|| base.module.clone()),
            args: add.args.clone().or_else(|| base.args.clone()),
            env: merge_by_key(&base.env, &add.env, |(name, _)| name.as_str()),
            preopens: merge_by_key(&base.preopens, &add.preopens, |p| p.guest.as_str()),
            enable_cgi: add.enable_cgi.or(base.enable_cgi),
            map_cgi_file_names: add.map_cgi_file_names.or(base.map_cgi_file_names),
            entry_point: add.entry_point.clone().or_else(|| base.entry_point.clone()),
            extensions: base.extensions.iter().chain(add.extensions.iter()).cloned().collect(),
            extension_phases: std::array::from_fn(|o| base.extension_phases[o] | add.extension_phases[o]),
            extension_scope: add.extension_scope.or(base.extension_scope),
            timeout: add.timeout.or(base.timeout),
            memory_limit: add.memory_limit.or(base.memory_limit),
            outgoing: add.outgoing.clone().or_else(|| base.outgoing.clone()),
        }
    }

    /// Whether the section sets nothing: merging with it changes nothing, so httpd can use
    /// the other section's config as it is (see mod_wasm's merge hook).
    pub fn is_empty(&self) -> bool {
        // Written out field by field, so that a new field cannot be forgotten here.
        let DirConfig {
            module,
            args,
            env,
            preopens,
            enable_cgi,
            map_cgi_file_names,
            entry_point,
            extensions,
            extension_phases,
            extension_scope,
            timeout,
            memory_limit,
            outgoing,
        } = self;
        module.is_none()
            && args.is_none()
            && env.is_empty()
            && preopens.is_empty()
            && enable_cgi.is_none()
            && map_cgi_file_names.is_none()
            && entry_point.is_none()
            && extensions.is_empty()
            && extension_phases.iter().all(|set| *set == 0)
            && extension_scope.is_none()
            && timeout.is_none()
            && memory_limit.is_none()
            && outgoing.is_none()
    }

    /// Adds a `WasmApacheModule` line.
    pub fn add_extension(&mut self, ext: ExtensionRef) {
        self.extension_phases[ext.order as usize] |= exported_phases(&ext.slot.info().exports);
        self.extensions.push(ext);
    }

    /// Whether a module of this section exports `phase`, at any position.
    pub fn exports(&self, phase: Phase) -> bool {
        self.extension_phases.iter().any(|set| set & phase.bit() != 0)
    }

    /// Appends `WasmArg`; the first one in a section starts a new list.
    pub fn add_arg(&mut self, arg: &str) {
        self.args.get_or_insert_with(Vec::new).push(arg.to_owned());
    }

    /// Appends a `WasmHttpOutgoing` origin; the first one in a section starts a new list.
    pub fn add_outgoing(&mut self, origin: Origin) {
        let mut list: Vec<Origin> = self.outgoing.as_deref().unwrap_or_default().to_vec();
        if !list.contains(&origin) {
            list.push(origin);
        }
        self.outgoing = Some(list.into());
    }

    /// The origins a wasi:http component here may send requests to (none unless configured).
    pub fn outgoing_origins(&self) -> Arc<[Origin]> {
        self.outgoing.clone().unwrap_or_else(|| Arc::from([]))
    }

    /// Sets `WasmEnv`; a repeated name in the same section keeps the last value.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
    }

    /// Adds `WasmDir` / `WasmMapDir`; a repeated guest path in the same section keeps the last.
    pub fn add_preopen(&mut self, guest: &str, host: &Path) {
        self.preopens.retain(|p| p.guest != guest);
        self.preopens.push(Preopen { guest: guest.to_owned(), host: host.to_owned() });
    }

    /// The limits guests of this section run under (defaults where unset).
    pub fn limits(&self) -> Limits {
        let default = Limits::default();
        Limits {
            timeout: self.timeout.unwrap_or(default.timeout),
            memory: self.memory_limit.unwrap_or(default.memory),
        }
    }

    pub fn extension_scope(&self) -> Scope {
        self.extension_scope.unwrap_or_default()
    }

    pub fn cgi(&self) -> bool {
        self.enable_cgi.unwrap_or(false)
    }

    pub fn entry_point(&self) -> &str {
        self.entry_point.as_deref().unwrap_or(DEFAULT_ENTRY_POINT)
    }

    /// argv as the guest sees it: the module's file name, then the `WasmArg`s.
    pub fn argv(&self) -> Vec<String> {
        let name = self
            .module
            .as_ref()
            .and_then(|m| m.slot.path().file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        std::iter::once(name).chain(self.args.iter().flatten().cloned()).collect()
    }

    /// The guest path of a host file, through the longest `WasmMapDir`/`WasmDir` host directory
    /// that contains it (`WasmMapCGIFileNames`). `None` if no preopen contains the file.
    pub fn guest_path_of(&self, host_file: &str) -> Option<String> {
        let host_file = Path::new(host_file);
        self.preopens
            .iter()
            .filter_map(|p| host_file.strip_prefix(&p.host).ok().map(|rest| (p, rest)))
            .max_by_key(|(p, _)| p.host.as_os_str().len())
            .map(|(p, rest)| {
                let guest = p.guest.trim_end_matches('/');
                if rest.as_os_str().is_empty() {
                    if guest.is_empty() { "/".to_owned() } else { guest.to_owned() }
                } else {
                    format!("{}/{}", guest, rest.to_string_lossy())
                }
            })
    }
}

/// Outer entries whose key the inner list does not set, followed by the inner entries.
fn merge_by_key<T: Clone>(base: &[T], add: &[T], key: impl Fn(&T) -> &str) -> Vec<T> {
    base.iter()
        .filter(|b| !add.iter().any(|a| key(a) == key(b)))
        .chain(add.iter())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_with_env(pairs: &[(&str, &str)]) -> DirConfig {
        let mut c = DirConfig::default();
        for (n, v) in pairs {
            c.set_env(n, v);
        }
        c
    }

    #[test]
    fn env_merges_by_name_inner_wins() {
        let outer = cfg_with_env(&[("A", "1"), ("B", "2")]);
        let inner = cfg_with_env(&[("B", "3"), ("C", "4")]);
        let merged = DirConfig::merge(&outer, &inner);
        assert_eq!(
            merged.env,
            vec![("A".into(), "1".into()), ("B".into(), "3".into()), ("C".into(), "4".into())]
        );
    }

    #[test]
    fn args_replace_as_a_list() {
        let mut outer = DirConfig::default();
        outer.add_arg("a");
        outer.add_arg("b");
        let mut inner = DirConfig::default();
        inner.add_arg("c");
        assert_eq!(DirConfig::merge(&outer, &inner).args, Some(vec!["c".to_string()]));
        assert_eq!(
            DirConfig::merge(&outer, &DirConfig::default()).args,
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn flags_inherit_unless_set() {
        let outer = DirConfig { enable_cgi: Some(true), ..Default::default() };
        let inner = DirConfig { entry_point: Some("run".into()), ..Default::default() };
        let merged = DirConfig::merge(&outer, &inner);
        assert!(merged.cgi());
        assert_eq!(merged.entry_point(), "run");
        let off = DirConfig { enable_cgi: Some(false), ..Default::default() };
        assert!(!DirConfig::merge(&outer, &off).cgi());
        assert_eq!(DirConfig::default().entry_point(), "_start");
        let pooled = DirConfig { extension_scope: Some(Scope::Server { max: None }), ..Default::default() };
        assert_eq!(DirConfig::merge(&pooled, &inner).extension_scope(), Scope::Server { max: None });
        let request = DirConfig { extension_scope: Some(Scope::Request), ..Default::default() };
        assert_eq!(DirConfig::merge(&pooled, &request).extension_scope(), Scope::Request);
        assert_eq!(DirConfig::default().extension_scope(), Scope::Request);
    }

    #[test]
    fn merging_with_an_empty_section_changes_nothing() {
        assert!(DirConfig::default().is_empty());
        let mut set = DirConfig::default();
        set.set_env("A", "1");
        set.add_arg("x");
        assert!(!set.is_empty());
        for merged in [DirConfig::merge(&set, &DirConfig::default()), DirConfig::merge(&DirConfig::default(), &set)] {
            assert_eq!(merged.env, set.env);
            assert_eq!(merged.args, set.args);
        }
        assert!(!DirConfig { timeout: Some(std::time::Duration::from_secs(1)), ..Default::default() }.is_empty());
    }

    #[test]
    fn preopens_merge_by_guest_path() {
        let mut outer = DirConfig::default();
        outer.add_preopen("/data", Path::new("/srv/a"));
        outer.add_preopen("/tmp", Path::new("/srv/tmp"));
        let mut inner = DirConfig::default();
        inner.add_preopen("/data", Path::new("/srv/b"));
        let merged = DirConfig::merge(&outer, &inner);
        assert_eq!(merged.preopens.len(), 2);
        assert_eq!(merged.preopens[1].host, PathBuf::from("/srv/b"));
    }

    #[test]
    fn guest_path_uses_longest_host_prefix() {
        let mut c = DirConfig::default();
        c.add_preopen("/app", Path::new("/srv/app"));
        c.add_preopen("/lib", Path::new("/srv/app/vendor"));
        assert_eq!(c.guest_path_of("/srv/app/index.php").as_deref(), Some("/app/index.php"));
        assert_eq!(c.guest_path_of("/srv/app/vendor/x.php").as_deref(), Some("/lib/x.php"));
        assert_eq!(c.guest_path_of("/srv/app").as_deref(), Some("/app"));
        assert_eq!(c.guest_path_of("/srv/application/x"), None);
        assert_eq!(c.guest_path_of("/etc/passwd"), None);
    }
}
