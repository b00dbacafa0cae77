"""An access log in JSON, written in log-transaction to httpd's error log (level notice,
prefixed `access:`), one object per request."""

import json

from mod_wasm_sdk import OK, LogLevel, Module, export


class JsonLogger(Module):
    def log_transaction(self, r):
        entry = {
            "client": r.useragent_ip,
            "method": r.method,
            "uri": r.uri,
            "query": r.args,
            "status": r.status,
            "user_agent": r.headers_in.get("User-Agent", ""),
            "content_type": r.content_type,
        }
        r.log(LogLevel.NOTICE, "access: " + json.dumps(entry, separators=(",", ":")))
        return OK


export(JsonLogger)
