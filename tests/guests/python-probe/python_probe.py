"""A Python extension module for tests/test_python_sdk.py, built with sdk-python/build.py. Its
config string picks what fixups does: "raise" (an exception), "none" (returns None), anything
else: report in response headers what it saw."""

from mod_wasm_sdk import DECLINED, InvalidValue, Module, export

served = 0  # module level: lives as long as the instance


class Probe(Module):
    def header_parser(self, r):
        self.seen_in_header_parser = r.uri
        return DECLINED

    def fixups(self, r):
        global served
        mode = r.module_config or ""
        if mode == "raise":
            raise RuntimeError("python-probe fails on purpose")
        if mode == "none":
            return None
        served += 1
        print(f"python-probe fixups for {r.uri}")
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


export(Probe)
