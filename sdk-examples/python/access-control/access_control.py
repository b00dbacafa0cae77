"""Access control in access-checker: an IP allow-list and a bearer token, configured by the
module's config string, e.g. "allow 127.0.0.1 10.0.0.0/8; token s3cret". A client outside
the allow-list gets 403; with a token configured, a request without
`Authorization: Bearer <token>` gets 401 with `WWW-Authenticate: Bearer realm="mod_wasm"`."""

import ipaddress

from mod_wasm_sdk import DECLINED, Module, export


def matches(rule, ip):
    """Whether `ip` is in `rule`: an address or a network (`10.0.0.0/8`, IPv6 too); a rule
    that is neither matches only the same text."""
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(rule, strict=False)
    except ValueError:
        return rule == ip


def settings(config):
    allow, token = [], None
    for setting in (config or "").split(";"):
        words = setting.split()
        if words[:1] == ["allow"]:
            allow += words[1:]
        elif words[:1] == ["token"] and len(words) == 2:
            token = words[1]
    return allow, token


class AccessControl(Module):
    def access_checker(self, r):
        allow, token = settings(r.module_config)
        ip = r.useragent_ip
        if allow and not any(matches(rule, ip) for rule in allow):
            r.log_info(f"access-control: {ip} is not on the allow-list")
            return 403
        if token is not None and r.headers_in.get("Authorization") != f"Bearer {token}":
            r.err_headers_out["WWW-Authenticate"] = 'Bearer realm="mod_wasm"'
            return 401
        return DECLINED


export(AccessControl)
