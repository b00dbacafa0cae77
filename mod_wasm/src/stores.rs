//! Shared stores (`WasmSharedStore NAME provider:args`) over httpd's socache providers:
//! `shmcb` shares one machine's children (shared memory, nothing to install), `redis` and
//! `memcache` a cluster's servers. The names, grants and limits are the host's
//! (host::store), which keeps each store's [`Store`] as its backend: one list of stores;
//! here is what talks to the providers.

use std::os::raw::c_char;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use host::store::{StoreBackend, StoreOp, MAX_VALUE};

use crate::ffi::*;
use crate::log::status_text;
use crate::pool::pool_owned;

/// The global mutex type for providers that need their callers to serialize access
/// (shmcb); httpd's `Mutex` directive can configure it.
const MUTEX_TYPE: &std::ffi::CStr = c"wasm-shared-store";

/// A store of the configuration being read: httpd's provider and the instance it made.
struct Store {
    name: String,
    provider: *const ap_socache_provider_t,
    instance: *mut ap_socache_instance_t,
    /// The mutex its calls are serialized with, when the provider needs one: created in
    /// post_config, reopened in each child; shared by every store that needs one.
    mutex: AtomicPtr<apr_global_mutex_t>,
}

// SAFETY: the provider is a static record and the instance lives in the configuration
// pool; both are only used through the provider's calls, serialized by its mutex where the
// provider requires it.
unsafe impl Send for Store {}
// SAFETY: as for Send: shared references only reach the provider's calls, serialized by
// its mutex where the provider requires it.
unsafe impl Sync for Store {}

/// The stores of the configuration, in the order of definition.
fn stores() -> Vec<Arc<Store>> {
    host::store::backends().into_iter().filter_map(|backend| backend.downcast::<Store>().ok()).collect()
}

/// Whether the provider asks its callers to serialize access.
///
/// # Safety
/// `provider` must be a registered socache provider record.
unsafe fn needs_mutex(provider: *const ap_socache_provider_t) -> bool {
    // SAFETY: caller's contract.
    unsafe { (*provider).flags & AP_SOCACHE_FLAG_NOTMPSAFE != 0 }
}

/// pre_config: registers the mutex type (the host's registry forgets the previous
/// configuration's stores, and their mutex with them).
///
/// # Safety
/// `pconf` must be httpd's configuration pool, during pre_config.
pub(crate) unsafe fn pre_config(pconf: *mut apr_pool_t) {
    // SAFETY: caller's contract; httpd keeps the static name.
    unsafe { ap_mutex_register(pconf, MUTEX_TYPE.as_ptr(), ptr::null(), APR_LOCK_DEFAULT, 0) };
}

/// `WasmSharedStore NAME provider[:args]`: finds httpd's socache provider and creates the
/// store (the provider checks its arguments here, so a bad one stops startup).
///
/// # Safety
/// `cmd` must be the live cmd_parms of the directive being read.
pub(crate) unsafe fn define(cmd: *mut cmd_parms, name: &str, spec: &str) -> Result<(), String> {
    let (provider_name, args) = host::config::values::store_provider(spec);
    // SAFETY: the directive's pools are live (caller); httpd's provider registry is filled
    // by the providers' modules as they register their hooks, before any directive is read.
    unsafe {
        let provider = ap_lookup_provider(
            c"socache".as_ptr(), // AP_SOCACHE_PROVIDER_GROUP
            pool_str((*cmd).temp_pool, provider_name),
            c"0".as_ptr(), // AP_SOCACHE_PROVIDER_VERSION
        ) as *const ap_socache_provider_t;
        if provider.is_null() {
            return Err(format!(
                "`{provider_name}` is not a socache provider httpd knows: load it first (LoadModule \
                 socache_{provider_name}_module), or use shmcb, redis, memcache or dbm"
            ));
        }
        host::store::define(name, || {
            let create = (*provider).create.ok_or("the provider cannot create a cache")?;
            let mut instance: *mut ap_socache_instance_t = ptr::null_mut();
            let args = args.map_or(ptr::null(), |a| pool_str((*cmd).pool, a) as *const c_char);
            let error = create(&mut instance, args, (*cmd).temp_pool, (*cmd).pool);
            if !error.is_null() {
                return Err(format!("{provider_name}: {}", c_str(error)));
            }
            let mutex = AtomicPtr::new(ptr::null_mut());
            Ok(Arc::new(Store { name: name.to_owned(), provider, instance, mutex }) as StoreBackend)
        })
    }
}

/// post_config: initializes every store (shmcb makes its shared memory here, which the
/// children inherit) and the mutex the providers that need one share.
///
/// # Safety
/// `pconf` and `s` must be httpd's configuration pool and main server, during post_config.
pub(crate) unsafe fn post_config(pconf: *mut apr_pool_t, s: *mut server_rec) -> Result<(), String> {
    let stores = stores();
    let hints = ap_socache_hints { avg_id_len: 32, avg_obj_size: 256, expiry_interval: 30 * 1_000_000 };
    for store in stores.iter() {
        // SAFETY: caller's contract; the provider record is static and the instance lives
        // in pconf, like the cleanup that destroys it with the configuration.
        unsafe {
            let init = (*store.provider).init.ok_or("the provider cannot initialize a cache")?;
            let rv = init(store.instance, c"mod_wasm".as_ptr(), &hints, s, pconf);
            if rv != APR_SUCCESS as apr_status_t {
                return Err(format!("WasmSharedStore {}: the store cannot be initialized: {}", store.name, status_text(rv)));
            }
            pool_owned(pconf, Initialized { provider: store.provider, instance: store.instance, s });
        }
    }
    // SAFETY: the provider records are static.
    if stores.iter().any(|store| unsafe { needs_mutex(store.provider) }) {
        let mut mutex = ptr::null_mut();
        // SAFETY: caller's contract; the type was registered in pre_config.
        let rv = unsafe { ap_global_mutex_create(&mut mutex, ptr::null_mut(), MUTEX_TYPE.as_ptr(), ptr::null(), s, pconf, 0) };
        if rv != APR_SUCCESS as apr_status_t {
            return Err(format!("WasmSharedStore: cannot create the {} mutex: {}", MUTEX_TYPE.to_string_lossy(), status_text(rv)));
        }
        // SAFETY: the provider records are static.
        for store in stores.iter().filter(|store| unsafe { needs_mutex(store.provider) }) {
            store.mutex.store(mutex, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// An initialized store, owned by the configuration pool: when the pool goes, the provider
/// lets go of the store.
struct Initialized {
    provider: *const ap_socache_provider_t,
    instance: *mut ap_socache_instance_t,
    s: *mut server_rec,
}

impl Drop for Initialized {
    fn drop(&mut self) {
        // SAFETY: the instance was initialized in post_config and is destroyed once, by its
        // pool's cleanup, before the pool goes; the provider record is static.
        unsafe {
            if let Some(destroy) = (*self.provider).destroy {
                destroy(self.instance, self.s);
            }
        }
    }
}

/// child_init: reopens the stores' mutex in the child.
///
/// # Safety
/// `pchild` must be the child's pool, during child_init.
pub(crate) unsafe fn child_init(pchild: *mut apr_pool_t) -> Result<(), String> {
    let stores = stores();
    let Some(mut mutex) = stores.iter().map(|s| s.mutex.load(Ordering::Relaxed)).find(|m| !m.is_null()) else {
        return Ok(());
    };
    // SAFETY: the mutex was created in post_config in the parent; caller's contract.
    let rv = unsafe { apr_global_mutex_child_init(&mut mutex, apr_global_mutex_lockfile(mutex), pchild) };
    if rv != APR_SUCCESS as apr_status_t {
        return Err(format!("WasmSharedStore: cannot reopen the {} mutex: {}", MUTEX_TYPE.to_string_lossy(), status_text(rv)));
    }
    for store in stores.iter().filter(|s| !s.mutex.load(Ordering::Relaxed).is_null()) {
        store.mutex.store(mutex, Ordering::Relaxed);
    }
    Ok(())
}

/// Runs `op` on `store` for the id `id`, under the mutex if the provider needs
/// it, with a pool of its own (a redis get allocates the value from it).
///
/// # Safety
/// `r` must be a live request, on its thread.
pub(crate) unsafe fn run(r: *mut request_rec, store: &StoreBackend, id: &[u8], op: StoreOp<'_>) -> Result<Option<Vec<u8>>, String> {
    let store = store.downcast_ref::<Store>().ok_or("not a store of this configuration")?;
    let (provider, instance) = (store.provider, store.instance);
    // SAFETY: the provider record is static.
    let mutex = if unsafe { needs_mutex(provider) } {
        let mutex = store.mutex.load(Ordering::Relaxed);
        if mutex.is_null() {
            return Err("the store's mutex is missing in this process".into());
        }
        mutex
    } else {
        ptr::null_mut()
    };
    // SAFETY: `r` is live (caller); the mutex (if any) was reopened in this child; the pool
    // is made here and destroyed with the guard; the provider's functions get ids and
    // buffers valid for the lengths given.
    unsafe {
        let _locked = match Locked::take(mutex) {
            Ok(locked) => locked,
            Err(rv) => return Err(format!("cannot take the store's mutex: {}", status_text(rv))),
        };
        let mut pool = ptr::null_mut();
        let rv = apr_pool_create_ex(&mut pool, (*r).pool, None, ptr::null_mut());
        if rv != APR_SUCCESS as apr_status_t {
            return Err(format!("no memory pool: {}", status_text(rv)));
        }
        let _pool = Scratch(pool);
        let (s, idlen) = ((*r).server, id.len() as u32);
        let result = match op {
            StoreOp::Get => {
                let mut buf = vec![0u8; MAX_VALUE];
                let mut len = buf.len() as u32;
                match (*provider).retrieve.map(|f| f(instance, s, id.as_ptr(), idlen, buf.as_mut_ptr(), &mut len, pool)) {
                    Some(rv) if rv == APR_SUCCESS as apr_status_t => {
                        buf.truncate(len as usize);
                        Ok(Some(buf))
                    }
                    Some(rv) if rv == APR_NOTFOUND as apr_status_t => Ok(None),
                    Some(rv) => Err(status_text(rv)),
                    None => Err("the provider cannot retrieve".into()),
                }
            }
            StoreOp::Set { value, ttl_seconds } => {
                let expiry = apr_time_now() + i64::from(ttl_seconds) * 1_000_000;
                let len = value.len() as u32;
                // The providers copy the value; none writes through the pointer.
                let data = value.as_ptr() as *mut u8;
                match (*provider).store.map(|f| f(instance, s, id.as_ptr(), idlen, expiry, data, len, pool)) {
                    Some(rv) if rv == APR_SUCCESS as apr_status_t => Ok(None),
                    Some(rv) => Err(status_text(rv)),
                    None => Err("the provider cannot store".into()),
                }
            }
            StoreOp::Delete => match (*provider).remove.map(|f| f(instance, s, id.as_ptr(), idlen, pool)) {
                Some(rv) if rv == APR_SUCCESS as apr_status_t || rv == APR_NOTFOUND as apr_status_t => Ok(None),
                Some(rv) => Err(status_text(rv)),
                None => Err("the provider cannot remove".into()),
            },
        };
        result
    }
}

/// The store's mutex, held until dropped (a panic included: a lock left held would stop
/// every child). Holds nothing when the provider needs no mutex.
struct Locked(*mut apr_global_mutex_t);

impl Locked {
    /// # Safety
    /// `mutex` must be null or the store mutex, reopened in this child.
    unsafe fn take(mutex: *mut apr_global_mutex_t) -> Result<Locked, apr_status_t> {
        if !mutex.is_null() {
            // SAFETY: caller's contract.
            let rv = unsafe { apr_global_mutex_lock(mutex) };
            if rv != APR_SUCCESS as apr_status_t {
                return Err(rv);
            }
        }
        Ok(Locked(mutex))
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: taken in Locked::take and released once, here.
            unsafe { apr_global_mutex_unlock(self.0) };
        }
    }
}

/// A pool for one provider call, destroyed when dropped.
struct Scratch(*mut apr_pool_t);

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: made by apr_pool_create_ex for this call and destroyed once, here.
        unsafe { apr_pool_destroy(self.0) };
    }
}
