"""A Python extension module for tests/test_sdk_probe.py, built with sdk-python/build.py. Its
config string picks what fixups does: "raise" (an exception), "none" (returns None),
"status-200" (a status no hook may answer), anything else: report in response headers what
it saw. It is also a handler (`SetHandler probe`), an output filter (upper case) and
an authorization provider (`Require NAME header-pass`: X-Pass: yes). tests/guests/js-probe is
its JavaScript twin."""

from mod_wasm_sdk import DECLINED, DENIED, GENERAL_ERROR, GRANTED, OK, InvalidValue, Module, export

served = 0  # module level: lives as long as the instance


class Probe(Module):
    def header_parser(self, r):
        self.seen_in_header_parser = r.uri
        return DECLINED

    def fixups(self, r):
        global served
        mode = r.module_config or ""
        if mode == "raise":
            raise RuntimeError("probe fails on purpose")
        if mode == "none":
            return None
        if mode == "status-200":
            return 200
        served += 1
        print(f"probe fixups for {r.uri}")
        self.fixups_calls = getattr(self, "fixups_calls", 0) + 1
        out = r.headers_out
        out["X-Seen-In-Header-Parser"] = self.seen_in_header_parser
        out["X-Fixups-Calls"] = str(self.fixups_calls)
        out["X-Instance-Served"] = str(served)
        out["X-Request-Header"] = r.headers_in.get("X-Probe", "absent")
        try:
            out["X-Bad"] = "one\r\nX-Injected: two"
        except InvalidValue as e:
            out["X-Refused"] = type(e).__name__
        return DECLINED

    def handler(self, r):
        if r.handler != "probe":
            return DECLINED
        first = r.read_body(16)  # written back as httpd gave it
        rest = r.read_body_to_end()
        r.content_type = "text/plain"
        r.write(f"probe handler read {len(first) + len(rest)} bytes, q={r.arg('q')}\n")
        r.write(first)
        r.write("\n")
        return OK

    # Config "same": the body unchanged (the bytes as given), with a header saying so.
    def output_filter(self, r, data, at):
        if r.module_config == "same":
            r.headers_out["X-Filtered"] = "same"
            return data
        return data.upper()

    def authz_provider(self, r, require_line):
        if require_line != "header-pass":
            return GENERAL_ERROR
        return GRANTED if r.headers_in.get("X-Pass") == "yes" else DENIED


export(Probe)
