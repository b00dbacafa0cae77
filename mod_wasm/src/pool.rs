//! Rust values owned by an APR pool: the one way mod_wasm ties a Rust value's life to
//! httpd's (a section's configuration to the configuration pool, a request's state to the
//! request's pool).

use std::ffi::c_void;

use crate::boundary::guard;
use crate::ffi::*;

/// Moves `value` into the keeping of `pool`: it is dropped by a cleanup of the pool, once,
/// when the pool is cleared or destroyed (a panic in its `Drop` is caught there). The
/// pointer stays valid until then; the value is only ever dropped by that cleanup.
///
/// # Safety
/// `pool` must be a live pool, and nothing may use the pointer once its cleanups have run.
pub unsafe fn pool_owned<T: 'static>(pool: *mut apr_pool_t, value: T) -> *mut T {
    unsafe extern "C" fn drop_value<T: 'static>(data: *mut c_void) -> apr_status_t {
        guard(|_| (), || {
            // SAFETY: `data` is the Box::into_raw below; a pool runs each cleanup once.
            drop(unsafe { Box::from_raw(data as *mut T) })
        });
        APR_SUCCESS as apr_status_t
    }
    let data = Box::into_raw(Box::new(value));
    // SAFETY: `pool` is live (caller); the cleanup frees `data` when the pool goes.
    unsafe { apr_pool_cleanup_register(pool, data as *mut c_void, Some(drop_value::<T>), Some(apr_pool_cleanup_null)) };
    data
}
