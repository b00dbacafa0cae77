"""Which httpd hooks mod_wasm registers, read back from mod_info's `server-info?hooks`: only
the phases that configured extension modules export, at the positions they are configured
at, under mod_wasm's own name, and again from scratch at each (graceful) restart. A server
without extension modules has no phase hook of ours."""

import re
import time

from harness import HTTPD_MODULES, Apache, guest

P2 = "wasm32-wasip2"
INFO = "<Location /server-info>\n    SetHandler server-info\n</Location>\n"
# mod_info's names of the request phases an extension module can take part in (httpd files
# ap_hook_check_access under the access_checker hook, which mod_info calls "legacy").
REQUEST_HOOKS = ["Post-Read Request", "Header Parse", "Quick Handler", "Pre-Translate Name", "Translate Name",
                 "Map to Storage", "Check Access (legacy)", "Verify User ID", "Verify User Access", "Check Type",
                 "Fixups", "Insert Filters", "Content Handlers", "Transaction Logging"]
# mod_info's number for each position (APR_HOOK_FIRST, _MIDDLE, _LAST).
POSITION = {"first": "00", "middle": "10", "last": "20"}


def wasm_hooks(apache):
    """{mod_info hook name: [positions of mod_wasm.c's functions in it]} for request hooks."""
    status, _, body = apache.get("/server-info?hooks")
    assert status == 200
    found = {}
    for name, entries in re.findall(r"<dt><strong>([^<]+):</strong>(.*?)</dt>", body.decode(), re.S):
        if name in REQUEST_HOOKS:
            found[name] = [order for order, module in re.findall(r'(-?\d+) <a href="\?([^"]+)"', entries)
                           if module == "mod_wasm.c"]
    assert set(found) >= set(REQUEST_HOOKS), found.keys()
    return {name: orders for name, orders in found.items() if orders}


def test_without_extension_modules_only_the_content_handler_is_hooked():
    hello = f"<Location /hello>\n    SetHandler wasm-handler\n    WasmModule {guest('hello')}\n</Location>\n"
    with Apache(INFO + hello, extra_modules=["info"]) as apache:
        assert apache.get("/hello")[2] == b"Hello from WebAssembly!\n"
        assert wasm_hooks(apache) == {"Content Handlers": ["10"]}


def test_each_exported_phase_is_hooked_once_at_its_configured_position():
    # add-headers exports fixups; request-id header_parser, fixups and log_transaction.
    # mod_wasm registers these hooks while the configuration is read, when httpd's name for
    # new hooks is still that of the module loaded last: here mod_alias, loaded after it.
    body = INFO + f"""
LoadModule alias_module {HTTPD_MODULES}/mod_alias.so
<Location /a>
    WasmApacheModule {guest("add_headers", P2)} "set X-Test a" first
</Location>
<Location /b>
    WasmApacheModule {guest("add_headers", P2)} "set X-Test b" first
    WasmApacheModule {guest("request_id", P2)} "" last
</Location>
"""
    with Apache(body, extra_modules=["info"]) as apache:
        apache.add_files({"a/page.txt": "a\n", "b/page.txt": "b\n"})
        apache.make_readable()
        status, headers, _ = apache.get("/a/page.txt")
        assert (status, headers.get("x-test")) == (200, "a")
        assert wasm_hooks(apache) == {
            "Content Handlers": ["10"],
            "Header Parse": [POSITION["last"]],
            "Fixups": [POSITION["first"], POSITION["last"]],
            "Transaction Logging": [POSITION["last"]],
        }


def graceful_restart(apache, body):
    """Rewrites the configuration's Wasm part and restarts gracefully, waiting for the new
    generation to serve."""
    conf = apache.conf.read_text()
    apache.conf.write_text(conf[:conf.index("# wasm part\n")] + "# wasm part\n" + body)
    mark = apache.log_mark()
    apache.graceful()
    assert apache.wait_log("resuming normal operations", since=mark)
    time.sleep(0.5)


def test_a_graceful_restart_registers_the_new_configurations_phases_only():
    fixups = f'<Location /guarded>\n    WasmApacheModule {guest("add_headers", P2)} "set X-Test yes"\n</Location>\n'
    access = (f'<Location /guarded>\n    WasmApacheModule {guest("access_control", P2)} "allow 192.0.2.0/24"\n'
              "</Location>\n")
    with Apache(INFO + "# wasm part\n" + fixups, extra_modules=["info"], log_level="notice wasm:debug") as apache:
        apache.add_files({"guarded/page.txt": "secret\n"})
        apache.make_readable()
        status, headers, _ = apache.get("/guarded/page.txt")
        assert (status, headers.get("x-test")) == (200, "yes")
        assert "Check Access (legacy)" not in wasm_hooks(apache)

        graceful_restart(apache, access)
        # The access checker runs (127.0.0.1 is not allowed), and the fixups hook is gone.
        status, headers, _ = apache.get("/guarded/page.txt")
        assert (status, headers.get("x-test")) == (403, None)
        assert wasm_hooks(apache) == {"Content Handlers": ["10"], "Check Access (legacy)": ["10"]}

        graceful_restart(apache, "")
        status, headers, _ = apache.get("/guarded/page.txt")
        assert (status, headers.get("x-test")) == (200, None)
        assert wasm_hooks(apache) == {"Content Handlers": ["10"]}
