// Access control in access-checker: an IP allow-list and a bearer token, configured by the
// module's config string, e.g. "allow 127.0.0.1 10.0.0.0/8; token s3cret". A client outside
// the allow-list gets 403; with a token configured, a request without
// `Authorization: Bearer <token>` gets 401 with `WWW-Authenticate: Bearer realm="mod_wasm"`.

import { DECLINED, Module, exportModule } from '../../../sdk-js/mod_wasm_sdk.js';

// An IPv4 address as a 32-bit number, or null.
function ipv4(text) {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) < 256)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

// Whether `ip` is in `rule`: an address or `a.b.c.d/len` (IPv4; anything else must be equal).
function matches(rule, ip) {
  const [net, len = '32', ...rest] = rule.split('/');
  const [a, b, bits] = [ipv4(net), ipv4(ip), /^\d{1,2}$/.test(len) ? Number(len) : -1];
  if (a === null || b === null || rest.length > 0 || !(bits >= 0 && bits <= 32)) return rule === ip;
  const size = 2 ** (32 - bits);
  return Math.floor(a / size) === Math.floor(b / size);
}

function settings(config) {
  const allow = [];
  let token = null;
  for (const setting of (config ?? '').split(';')) {
    const [word, ...rest] = setting.trim().split(/\s+/);
    if (word === 'allow') allow.push(...rest);
    else if (word === 'token' && rest.length === 1) token = rest[0];
  }
  return { allow, token };
}

class AccessControl extends Module {
  accessChecker(r) {
    const { allow, token } = settings(r.moduleConfig);
    const ip = r.useragentIp;
    if (allow.length > 0 && !allow.some((rule) => matches(rule, ip))) {
      r.logInfo(`access-control: ${ip} is not on the allow-list`);
      return 403;
    }
    if (token !== null && r.headersIn.get('Authorization') !== `Bearer ${token}`) {
      r.errHeadersOut.set('WWW-Authenticate', 'Bearer realm="mod_wasm"');
      return 401;
    }
    return DECLINED;
  }
}

export const { accessChecker, requestEnd } = exportModule(AccessControl);
