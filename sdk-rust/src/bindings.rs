//! Generated bindings: the `apache:httpd/types` imports once, and one world per phase whose
//! export macro [`crate::export!`] invokes for the phases and filters a module lists. The lines
//! follow the host's phase and filter lists (a host unit test checks them against it).
#![allow(missing_docs, clippy::all)]

wit_bindgen::generate!({
    path: "../wit",
    world: "apache:httpd/imports",
});

macro_rules! export_world {
    ($module:ident, $world:literal, $macro_name:literal, $path:literal) => {
        pub mod $module {
            wit_bindgen::generate!({
                path: "../wit",
                world: $world,
                with: { "apache:httpd/types@0.1.0": crate::bindings::apache::httpd::types },
                pub_export_macro: true,
                export_macro_name: $macro_name,
                default_bindings_module: $path,
            });
        }
    };
}

export_world!(post_read_request, "apache:httpd/post-read-request-module", "export_post_read_request", "mod_wasm_sdk::bindings::post_read_request");
export_world!(quick_handler, "apache:httpd/quick-handler-module", "export_quick_handler", "mod_wasm_sdk::bindings::quick_handler");
export_world!(pre_translate_name, "apache:httpd/pre-translate-name-module", "export_pre_translate_name", "mod_wasm_sdk::bindings::pre_translate_name");
export_world!(translate_name, "apache:httpd/translate-name-module", "export_translate_name", "mod_wasm_sdk::bindings::translate_name");
export_world!(map_to_storage, "apache:httpd/map-to-storage-module", "export_map_to_storage", "mod_wasm_sdk::bindings::map_to_storage");
export_world!(header_parser, "apache:httpd/header-parser-module", "export_header_parser", "mod_wasm_sdk::bindings::header_parser");
export_world!(access_checker, "apache:httpd/access-checker-module", "export_access_checker", "mod_wasm_sdk::bindings::access_checker");
export_world!(check_user_id, "apache:httpd/check-user-id-module", "export_check_user_id", "mod_wasm_sdk::bindings::check_user_id");
export_world!(auth_checker, "apache:httpd/auth-checker-module", "export_auth_checker", "mod_wasm_sdk::bindings::auth_checker");
export_world!(type_checker, "apache:httpd/type-checker-module", "export_type_checker", "mod_wasm_sdk::bindings::type_checker");
export_world!(fixups, "apache:httpd/fixups-module", "export_fixups", "mod_wasm_sdk::bindings::fixups");
export_world!(insert_filter, "apache:httpd/insert-filter-module", "export_insert_filter", "mod_wasm_sdk::bindings::insert_filter");
export_world!(handler, "apache:httpd/handler-module", "export_handler", "mod_wasm_sdk::bindings::handler");
export_world!(log_transaction, "apache:httpd/log-transaction-module", "export_log_transaction", "mod_wasm_sdk::bindings::log_transaction");
// Body filters (WasmOutputFilter, WasmInputFilter), in the host's filter list.
export_world!(output_filter, "apache:httpd/output-filter-module", "export_output_filter", "mod_wasm_sdk::bindings::output_filter");
export_world!(input_filter, "apache:httpd/input-filter-module", "export_input_filter", "mod_wasm_sdk::bindings::input_filter");
// Authorization providers (WasmAuthzProvider).
export_world!(authz_provider, "apache:httpd/authz-provider-module", "export_authz_provider", "mod_wasm_sdk::bindings::authz_provider");
// Not a phase: how a kept instance learns that its request ended (exported by every module).
export_world!(request_end, "apache:httpd/request-end-module", "export_request_end", "mod_wasm_sdk::bindings::request_end");
