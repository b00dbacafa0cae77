"""mod_headers in a few lines: the module's config string lists response header edits,
separated by `;`. `set NAME VALUE` replaces, `append NAME VALUE` merges with a comma,
`add NAME VALUE` adds another header line, `unset NAME` removes. Applied in fixups to
err_headers_out (and headers_out for unset), so error responses carry them too."""

from mod_wasm_sdk import DECLINED, HttpdError, Module, export


class AddHeaders(Module):
    def fixups(self, r):
        headers = r.err_headers_out
        for edit in (r.module_config or "").split(";"):
            op, _, rest = edit.strip().partition(" ")
            name, _, value = rest.strip().partition(" ")
            try:
                if op == "set" and value:
                    headers[name] = value
                elif op == "append" and value:
                    headers.merge(name, value)
                elif op == "add" and value:
                    headers.add(name, value)
                elif op == "unset" and name and not value:
                    del headers[name]
                    del r.headers_out[name]
                elif op:
                    r.log_error(f"add-headers: cannot understand `{edit.strip()}`")
            except HttpdError as e:
                r.log_error(f"add-headers: `{edit.strip()}`: {e}")
        return DECLINED


export(AddHeaders)
