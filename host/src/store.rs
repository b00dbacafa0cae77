//! Shared stores (`WasmSharedStore NAME provider:args`): key-value stores that every child
//! process of a server shares — and, through redis or memcache, every server of a cluster —
//! built on httpd's socache providers (mod_wasm/src/stores.rs does the httpd side). Here:
//! their names, which modules each is granted to (`WasmSharedStoreGrant`), and the checks a
//! guest's call passes before it reaches httpd.

use std::sync::{Arc, Mutex};

pub use crate::request::{StoreBackend, StoreOp};
use crate::slot::ModuleSlot;

/// The longest key, in bytes. The providers keep a key as hex with a prefix in 254 bytes
/// (redis, memcache); with the store's name in front, 64 bytes stay well inside that.
pub const MAX_KEY: usize = 64;
/// The largest value, in bytes. A provider may refuse smaller ones (shmcb: about a
/// thirty-second of its size, less what it already holds).
pub const MAX_VALUE: usize = 64 * 1024;
/// The longest time a value may be kept, in seconds (30 days).
pub const MAX_TTL: u32 = 30 * 24 * 3600;

struct StoreDef {
    name: String,
    granted: Vec<Arc<ModuleSlot>>,
    /// What carries out its operations (mod_wasm's socache provider and instance).
    backend: StoreBackend,
}

static STORES: Mutex<Vec<StoreDef>> = Mutex::new(Vec::new());

fn stores() -> std::sync::MutexGuard<'static, Vec<StoreDef>> {
    // Pushes and clears are whole; a panic elsewhere cannot leave the list half-changed.
    STORES.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Forgets the stores of the previous configuration (with the registry's other lists).
pub(crate) fn reset() {
    stores().clear();
}

/// Defines a store: once its name is checked (valid, not defined yet), `backend` makes what
/// carries out its operations.
pub fn define(name: &str, backend: impl FnOnce() -> Result<StoreBackend, String>) -> Result<(), String> {
    let name = crate::config::values::store_name(name)?;
    let mut stores = stores();
    if stores.iter().any(|s| s.name == name) {
        return Err(format!("{name} is already defined by an earlier WasmSharedStore line"));
    }
    stores.push(StoreDef { name: name.to_owned(), granted: Vec::new(), backend: backend()? });
    Ok(())
}

/// The backend of every store, in the order of definition.
pub fn backends() -> Vec<StoreBackend> {
    stores().iter().map(|s| s.backend.clone()).collect()
}

/// Lets the module in `slot` use the store `name`.
pub fn grant(name: &str, slot: Arc<ModuleSlot>) -> Result<(), String> {
    let mut stores = stores();
    let store = stores
        .iter_mut()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no store {name} is defined (a WasmSharedStore line must come first)"))?;
    if !store.granted.iter().any(|s| Arc::ptr_eq(s, &slot)) {
        store.granted.push(slot);
    }
    Ok(())
}

/// Checks a guest's call: the store is granted to its module, and the key, value and
/// lifetime are within the limits. Returns the store's backend and the id the provider
/// keeps the key under (the store's name, `:`, the key), or the reason to refuse it.
pub fn check(name: &str, slot: Option<&Arc<ModuleSlot>>, key: &str, op: &StoreOp<'_>) -> Result<(StoreBackend, Vec<u8>), String> {
    let backend = {
        let stores = stores();
        let found = stores.iter().find(|s| s.name == name && slot.is_some_and(|m| s.granted.iter().any(|g| Arc::ptr_eq(g, m))));
        let found = found.ok_or_else(|| format!("no shared store {name} is granted to this module (WasmSharedStoreGrant {name} <module>)"))?;
        found.backend.clone()
    };
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!("a key is 1 to {MAX_KEY} bytes, not {}", key.len()));
    }
    if let StoreOp::Set { value, ttl_seconds } = op {
        if value.len() > MAX_VALUE {
            return Err(format!("a value is at most {MAX_VALUE} bytes, not {}", value.len()));
        }
        if !(1..=MAX_TTL).contains(ttl_seconds) {
            return Err(format!("a lifetime is 1 to {MAX_TTL} seconds, not {ttl_seconds}"));
        }
    }
    Ok((backend, format!("{name}:{key}").into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str) -> Arc<ModuleSlot> {
        let dir = std::env::temp_dir().join(format!("mod_wasm_store_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(name);
        std::fs::write(&file, wat::parse_str("(module)").unwrap()).unwrap();
        crate::registry::register(&file, |_, _| Ok(())).unwrap()
    }

    #[test]
    fn only_granted_modules_reach_a_store_and_limits_hold() {
        let (a, b) = (slot("a.wasm"), slot("b.wasm"));
        let backend: StoreBackend = Arc::new("sessions");
        define("store-test-sessions", || Ok(backend.clone())).unwrap();
        assert!(define("store-test-sessions", || Ok(backend.clone())).is_err());
        assert!(define("a/b", || Ok(backend.clone())).is_err() && define("", || Ok(backend.clone())).is_err());
        assert!(define("store-test-refused", || Err("no provider".into())).is_err());
        grant("store-test-sessions", a.clone()).unwrap();
        assert!(grant("store-test-missing", a.clone()).is_err());
        let get = StoreOp::Get;
        let (found, id) = check("store-test-sessions", Some(&a), "k", &get).unwrap();
        assert!(Arc::ptr_eq(&found, &backend));
        assert_eq!(id, b"store-test-sessions:k".to_vec());
        let refused = check("store-test-sessions", Some(&b), "k", &get).unwrap_err();
        assert!(refused.starts_with("no shared store store-test-sessions is granted to this module"), "{refused}");
        assert!(check("store-test-sessions", None, "k", &get).is_err());
        assert!(check("store-test-other", Some(&a), "k", &get).is_err());
        assert!(check("store-test-sessions", Some(&a), "", &get).is_err());
        assert!(check("store-test-sessions", Some(&a), &"k".repeat(MAX_KEY + 1), &get).is_err());
        let big = vec![0u8; MAX_VALUE + 1];
        assert!(check("store-test-sessions", Some(&a), "k", &StoreOp::Set { value: &big, ttl_seconds: 10 }).is_err());
        assert!(check("store-test-sessions", Some(&a), "k", &StoreOp::Set { value: b"v", ttl_seconds: 0 }).is_err());
        assert!(check("store-test-sessions", Some(&a), "k", &StoreOp::Set { value: b"v", ttl_seconds: 10 }).is_ok());
    }
}
