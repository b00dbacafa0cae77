/* mod_wasm.c: the module record, the directive table and hook registration.
 * Everything else is Rust (src/); include/mod_wasm_ffi.h declares it.
 */
#include "httpd.h"
#include "http_config.h"
#include "mod_status.h"
#include "http_protocol.h"
#include "http_request.h"

#include "mod_wasm_ffi.h"

#define DIR_CONTEXT (RSRC_CONF | ACCESS_CONF)

static const command_rec wasm_cmds[] = {
    AP_INIT_TAKE1("WasmModule", wasm_cmd_module, NULL, DIR_CONTEXT,
                  "the .wasm program (core module or WASI command component) to run"),
    AP_INIT_TAKE1("WasmDir", wasm_cmd_dir, NULL, DIR_CONTEXT,
                  "a host directory the program sees at the same path"),
    AP_INIT_TAKE2("WasmMapDir", wasm_cmd_map_dir, NULL, DIR_CONTEXT,
                  "a guest path and the host directory it shows"),
    AP_INIT_TAKE1("WasmArg", wasm_cmd_arg, NULL, DIR_CONTEXT,
                  "an argument appended to the program's argv"),
    AP_INIT_TAKE2("WasmEnv", wasm_cmd_env, NULL, DIR_CONTEXT,
                  "an environment variable name and value for the program"),
    AP_INIT_FLAG("WasmEnableCGI", wasm_cmd_enable_cgi, NULL, DIR_CONTEXT,
                 "On: CGI request variables in, CGI response headers out"),
    AP_INIT_FLAG("WasmMapCGIFileNames", wasm_cmd_map_cgi_file_names, NULL, DIR_CONTEXT,
                 "On: SCRIPT_FILENAME as the guest sees it through WasmMapDir"),
    AP_INIT_TAKE1("WasmEntryPoint", wasm_cmd_entry_point, NULL, DIR_CONTEXT,
                  "the function a core module runs (default _start)"),
    AP_INIT_ITERATE("WasmHttpOutgoing", wasm_cmd_http_outgoing, NULL, DIR_CONTEXT,
                    "origins a wasi:http component may send requests to (http://host:port)"),
    AP_INIT_TAKE1("WasmTimeout", wasm_cmd_timeout, NULL, DIR_CONTEXT,
                  "the most time a guest may take per request or hook call (30s, 500ms, 2m)"),
    AP_INIT_TAKE1("WasmMemoryLimit", wasm_cmd_memory_limit, NULL, DIR_CONTEXT,
                  "the most linear memory one guest instance may use (64M, 512K, 1G)"),
    AP_INIT_TAKE1("WasmCacheDir", wasm_cmd_cache_dir, NULL, RSRC_CONF,
                  "where compiled code is kept between starts, or Off"),
    AP_INIT_TAKE123("WasmApacheModule", wasm_cmd_apache_module, NULL, DIR_CONTEXT,
                    "an extension module (apache:httpd world), an optional config string and "
                    "an optional position among other modules' hooks: first, middle or last"),
    AP_INIT_TAKE12("WasmApacheModuleScope", wasm_cmd_apache_module_scope, NULL, DIR_CONTEXT,
                   "how long extension module instances live: request (default), or server "
                   "with an optional most kept per module"),
    AP_INIT_TAKE23("WasmOutputFilter", wasm_cmd_output_filter, NULL, RSRC_CONF,
                   "a filter name, the extension module whose output-filter it runs, and an "
                   "optional config string"),
    AP_INIT_TAKE23("WasmInputFilter", wasm_cmd_input_filter, NULL, RSRC_CONF,
                   "a filter name, the extension module whose input-filter it runs, and an "
                   "optional config string"),
    AP_INIT_TAKE23("WasmAuthzProvider", wasm_cmd_authz_provider, NULL, RSRC_CONF,
                   "a Require provider name, the extension module whose authz-provider it "
                   "runs, and an optional config string"),
    AP_INIT_TAKE2("WasmSharedStore", wasm_cmd_shared_store, NULL, RSRC_CONF,
                  "a store name and an httpd socache provider with its arguments "
                  "(shmcb:/path(size), redis:host:port, memcache:host:port)"),
    AP_INIT_ITERATE2("WasmSharedStoreGrant", wasm_cmd_shared_store_grant, NULL, RSRC_CONF,
                     "a store name and the extension modules that may use it"),
    {NULL}
};

/* The content handler, the per-child runtime and the filter a failed insert-filter hook adds.
 * The hooks of the phases extension modules export are registered as WasmApacheModule
 * lines are read (register_phase_hooks in src/phases.rs), only for those phases. */
static void wasm_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(wasm_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(wasm_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(wasm_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(wasm_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* Per-module figures on mod_status's server-status page, when mod_status is loaded. */
    APR_OPTIONAL_HOOK(ap, status_hook, wasm_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
    wasm_register_hook_failed_filter();
}

AP_DECLARE_MODULE(wasm) = {
    STANDARD20_MODULE_STUFF,
    wasm_create_dir_config,
    wasm_merge_dir_config,
    NULL,
    NULL,
    wasm_cmds,
    wasm_register_hooks,
    AP_MODULE_FLAG_NONE
};
