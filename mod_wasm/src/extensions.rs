//! Extension modules (`WasmApacheModule`) in httpd's request phases: one hook per phase,
//! and [`host::HttpdRequest`] over `request_rec` for the guest's calls.

use std::ffi::c_void;
use std::io;
use std::os::raw::{c_char, c_int};

use host::config::DirConfig;
use host::extension::{HookOutcome, Phase, RequestInstances};
use host::{BodyError, Field, HttpdRequest, LogLevel, Table};

use crate::boundary::guard;
use crate::directives::dir_config;
use crate::ffi::*;
use crate::request::{log_request, read_body, send_now};

/// Runs the extension modules of `r`'s configuration that export `phase`, in configuration
/// order, with httpd's meaning of the phase: RUN_FIRST phases stop at the first `ok`,
/// RUN_ALL phases go on; `done` and a status stop at once. A guest failure answers 500, or
/// 503 at its deadline (only logged in log-transaction, when the response is gone).
unsafe fn run_phase(r: *mut request_rec, phase: Phase) -> c_int {
    let cfg: &DirConfig = dir_config(module_config((*r).per_dir_config));
    if cfg.extension_phases & phase.bit() == 0 {
        return DECLINED as c_int;
    }
    let run_first = matches!(
        phase,
        Phase::TranslateName | Phase::CheckUserId | Phase::AuthChecker | Phase::TypeChecker | Phase::Handler
    );
    let instances = request_instances(r);
    let (limits, scope) = (cfg.limits(), cfg.extension_scope());
    let mut result = DECLINED as c_int;
    for ext in &cfg.extensions {
        match (*instances).run(ext, phase, limits, scope, Box::new(HookRequest::new(r))) {
            HookOutcome::Declined => {}
            HookOutcome::Ok if phase == Phase::Handler => {
                // The response is complete: end it and send it now, as the content handler
                // does (crate::request::send_now).
                ap_finalize_request_protocol(r);
                send_now(r, apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc));
                return OK as c_int;
            }
            HookOutcome::Ok if run_first => return OK as c_int,
            HookOutcome::Ok => result = OK as c_int,
            HookOutcome::Done => return DONE as c_int,
            HookOutcome::Status(status) => return status as c_int,
            HookOutcome::Failed(_) if phase == Phase::LogTransaction => {}
            HookOutcome::Failed(status) => return status as c_int,
        }
    }
    result
}

/// The extension instances of the request `r` belongs to: subrequests and internal
/// redirects share those of the original request, which drops them with its pool.
unsafe fn request_instances(r: *mut request_rec) -> *mut RequestInstances {
    let mut root = r;
    loop {
        if !(*root).main.is_null() {
            root = (*root).main;
        } else if !(*root).prev.is_null() {
            root = (*root).prev;
        } else {
            break;
        }
    }
    let slot = ((*root).request_config as *mut *mut c_void).add(module_index() as usize);
    if (*slot).is_null() {
        unsafe extern "C" fn drop_instances(data: *mut c_void) -> apr_status_t {
            drop(Box::from_raw(data as *mut RequestInstances));
            APR_SUCCESS as apr_status_t
        }
        let instances = Box::into_raw(Box::<RequestInstances>::default()) as *mut c_void;
        apr_pool_cleanup_register((*root).pool, instances, Some(drop_instances), Some(apr_pool_cleanup_null));
        *slot = instances;
    }
    *slot as *mut RequestInstances
}

/// A phase hook's body inside the panic boundary.
unsafe fn hook(r: *mut request_rec, phase: Phase) -> c_int {
    guard(
        |msg| {
            log_request(r, LogLevel::Error, &msg);
            HTTP_INTERNAL_SERVER_ERROR as c_int
        },
        || run_phase(r, phase),
    )
}

// The hooks mod_wasm.c registers, one per phase (written out: cbindgen does not expand macros).
#[no_mangle]
pub unsafe extern "C" fn wasm_translate_name(r: *mut request_rec) -> c_int {
    hook(r, Phase::TranslateName)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_header_parser(r: *mut request_rec) -> c_int {
    hook(r, Phase::HeaderParser)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_access_checker(r: *mut request_rec) -> c_int {
    hook(r, Phase::AccessChecker)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_check_user_id(r: *mut request_rec) -> c_int {
    hook(r, Phase::CheckUserId)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_auth_checker(r: *mut request_rec) -> c_int {
    hook(r, Phase::AuthChecker)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_type_checker(r: *mut request_rec) -> c_int {
    hook(r, Phase::TypeChecker)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_fixups(r: *mut request_rec) -> c_int {
    hook(r, Phase::Fixups)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_extension_handler(r: *mut request_rec) -> c_int {
    hook(r, Phase::Handler)
}
#[no_mangle]
pub unsafe extern "C" fn wasm_log_transaction(r: *mut request_rec) -> c_int {
    hook(r, Phase::LogTransaction)
}

/// `request_rec` for one hook call.
struct HookRequest {
    r: *mut request_rec,
    body: *mut apr_bucket_brigade,
}

// SAFETY: used only during the hook call, on the request's thread.
unsafe impl Send for HookRequest {}

impl HookRequest {
    fn new(r: *mut request_rec) -> Self {
        HookRequest { r, body: std::ptr::null_mut() }
    }

    fn pooled(&self, value: &str) -> *mut c_char {
        unsafe { pool_str((*self.r).pool, value) }
    }

    fn table(&self, table: Table) -> *mut apr_table_t {
        unsafe {
            match table {
                Table::HeadersIn => (*self.r).headers_in,
                Table::HeadersOut => (*self.r).headers_out,
                Table::ErrHeadersOut => (*self.r).err_headers_out,
                Table::Notes => (*self.r).notes,
                Table::SubprocessEnv => (*self.r).subprocess_env,
            }
        }
    }

    fn with_c(&self, name: &str, value: &str, f: unsafe extern "C" fn(*mut apr_table_t, *const c_char, *const c_char), table: Table) {
        unsafe { f(self.table(table), self.pooled(name), self.pooled(value)) }
    }
}

fn text(s: *const c_char) -> Option<String> {
    (!s.is_null()).then(|| unsafe { c_str(s) })
}

impl HttpdRequest for HookRequest {
    fn field(&self, field: Field) -> Option<String> {
        let r = self.r;
        unsafe {
            match field {
                Field::Method => text((*r).method),
                Field::Uri => text((*r).uri),
                Field::UnparsedUri => text((*r).unparsed_uri),
                Field::TheRequest => text((*r).the_request),
                Field::Args => text((*r).args),
                Field::Protocol => text((*r).protocol),
                Field::Hostname => text((*r).hostname),
                Field::PathInfo => text((*r).path_info),
                Field::Filename => text((*r).filename),
                Field::CanonicalFilename => text((*r).canonical_filename),
                Field::Handler => text((*r).handler),
                Field::ContentType => text((*r).content_type),
                Field::ContentEncoding => text((*r).content_encoding),
                Field::User => text((*r).user),
                Field::ApAuthType => text((*r).ap_auth_type),
                Field::UseragentIp => text((*r).useragent_ip),
                Field::DocumentRoot => text(ap_context_document_root(r)),
                Field::ServerName => text(ap_get_server_name(r)),
                Field::LogId => text((*r).log_id),
            }
        }
    }

    fn set_field(&mut self, field: Field, value: Option<&str>) {
        let r = self.r;
        let v = value.map(|v| self.pooled(v)).unwrap_or(std::ptr::null_mut());
        unsafe {
            match field {
                Field::Uri => (*r).uri = v,
                Field::Args => (*r).args = v,
                Field::Filename => (*r).filename = v,
                Field::Handler => (*r).handler = v,
                Field::ContentType => ap_set_content_type(r, v),
                Field::User => (*r).user = v,
                // The host only passes the writable fields.
                _ => {}
            }
        }
    }

    fn port(&self) -> u16 {
        unsafe { ap_get_server_port(self.r) }
    }
    fn status(&self) -> u16 {
        unsafe { (*self.r).status as u16 }
    }
    fn set_status(&mut self, status: u16) {
        unsafe { (*self.r).status = status as c_int }
    }
    fn is_https(&self) -> bool {
        unsafe { ap_ssl_conn_is_ssl((*self.r).connection) != 0 }
    }
    fn is_initial_req(&self) -> bool {
        unsafe { ap_is_initial_req(self.r) != 0 }
    }

    fn table_get_all(&self, table: Table, name: &str) -> Vec<String> {
        unsafe { table_values(self.table(table), name) }
    }
    fn table_set(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_setn, table)
    }
    fn table_add(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_addn, table)
    }
    fn table_merge(&mut self, table: Table, name: &str, value: &str) {
        self.with_c(name, value, apr_table_mergen, table)
    }
    fn table_unset(&mut self, table: Table, name: &str) {
        unsafe { apr_table_unset(self.table(table), self.pooled(name)) }
    }
    fn table_entries(&self, table: Table) -> Vec<(String, String)> {
        unsafe { table_entries(self.table(table)) }
    }

    fn read_body(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        unsafe {
            if self.body.is_null() {
                self.body = apr_brigade_create((*self.r).pool, (*(*self.r).connection).bucket_alloc);
            }
            read_body(self.r, self.body, buf)
        }
    }

    fn write_body(&mut self, data: &[u8]) -> io::Result<()> {
        let n = unsafe { ap_rwrite(data.as_ptr() as *const c_void, data.len() as c_int, self.r) };
        if n < 0 {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client connection failed"))
        } else {
            Ok(())
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        unsafe { log_request(self.r, level, message) }
    }
}
