//! Per-module figures on mod_status's server-status page (and `?auto`, which monitoring
//! tools scrape): the counters of host::stats, in memory mapped in httpd's parent before it
//! forks, so that every child adds to the same numbers.

use std::os::raw::c_int;

use host::stats::Snapshot;

use crate::boundary::guard;
use crate::ffi::*;

/// mod_status.h's AP_STATUS_SHORT: the `?auto` report.
const AP_STATUS_SHORT: c_int = 0x1;

/// Maps the counters of every registered module, zeroed, before the children are forked.
/// Without them (no shared memory) requests are served and nothing is counted.
///
/// # Safety
/// `pconf` must be httpd's configuration pool, during post_config.
pub unsafe fn post_config(pconf: *mut apr_pool_t) -> Result<(), String> {
    let modules = host::registry::all().len();
    let size = host::stats::region_size(modules);
    let mut shm: *mut apr_shm_t = std::ptr::null_mut();
    // SAFETY: an anonymous segment in the configuration pool, which destroys it on restart;
    // children keep their inherited mapping for their whole life.
    unsafe {
        let rv = apr_shm_create(&mut shm, size as apr_size_t, std::ptr::null(), pconf);
        if rv != APR_SUCCESS as apr_status_t {
            host::stats::attach(std::ptr::null_mut(), 0);
            return Err(format!("no shared memory for server-status figures: {}", crate::log::status_text(rv)));
        }
        let base = apr_shm_baseaddr_get(shm) as *mut u8;
        std::ptr::write_bytes(base, 0, size);
        host::stats::attach(base, modules);
    }
    Ok(())
}

/// mod_status's status_hook: one section per module.
#[no_mangle]
pub unsafe extern "C" fn wasm_status_hook(r: *mut request_rec, flags: c_int) -> c_int {
    guard(|_| OK as c_int, || {
        let text = report(flags & AP_STATUS_SHORT != 0);
        // SAFETY: mod_status calls the hook with the live request it is answering.
        unsafe { ap_rwrite(text.as_ptr() as *const _, text.len() as c_int, r) };
        OK as c_int
    })
}

fn report(short: bool) -> String {
    let modules: Vec<(String, Snapshot)> = host::registry::all()
        .iter()
        .filter_map(|slot| Some((slot.name().to_string(), slot.stats()?.snapshot())))
        .collect();
    let mut out = String::new();
    if short {
        out.push_str(&format!("WasmModules: {}\n", modules.len()));
        for (i, (name, s)) in modules.iter().enumerate() {
            let mut line = |key: &str, value: String| out.push_str(&format!("WasmModule{i}{key}: {value}\n"));
            line("Path", name.clone());
            for (call, n) in &s.calls {
                line(&format!("Calls-{}", call.name()), n.to_string());
            }
            line("Traps", s.traps.to_string());
            line("Timeouts", s.timeouts.to_string());
            line("MemoryRefusals", s.memory_refusals.to_string());
            line("MeanMicroseconds", format!("{:.1}", s.mean_us));
            line("P99Microseconds", format!("{:.0}", s.p99_us));
            line("InstancesLive", s.live.to_string());
            line("InstancesPooled", s.pooled.to_string());
        }
        return out;
    }
    out.push_str("<hr />\n<h2>mod_wasm</h2>\n<table border=\"0\">\n<tr><th>module</th><th>calls</th><th>traps</th>\
                  <th>timeouts</th><th>memory refusals</th><th>mean &micro;s</th><th>p99 &micro;s</th>\
                  <th>instances live</th><th>pooled</th></tr>\n");
    for (name, s) in &modules {
        let calls: Vec<String> = s.calls.iter().map(|(call, n)| format!("{} {n}", call.name())).collect();
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.0}</td><td>{}</td><td>{}</td></tr>\n",
            html(name),
            if calls.is_empty() { "none".to_owned() } else { calls.join(", ") },
            s.traps,
            s.timeouts,
            s.memory_refusals,
            s.mean_us,
            s.p99_us,
            s.live,
            s.pooled
        ));
    }
    out.push_str("</table>\n");
    out
}

/// A path as HTML text.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
