// The JavaScript twin of tests/guests/python-probe (tests/test_sdk_probe.py), built with
// sdk-js/build.mjs: the same config strings, the same answers.
import { DECLINED, DENIED, GENERAL_ERROR, GRANTED, HttpdError, Module, OK, exportModule } from '../../../sdk-js/mod_wasm_sdk.js';

let served = 0; // module level: lives as long as the instance

class Probe extends Module {
  headerParser(r) {
    this.seenInHeaderParser = r.uri;
    return DECLINED;
  }

  fixups(r) {
    const mode = r.moduleConfig ?? '';
    if (mode === 'raise') throw new Error('probe fails on purpose');
    if (mode === 'none') return undefined;
    if (mode === 'status-200') return 200;
    served += 1;
    console.log(`probe fixups for ${r.uri}`);
    this.fixupsCalls = (this.fixupsCalls ?? 0) + 1;
    const out = r.headersOut;
    out.set('X-Seen-In-Header-Parser', this.seenInHeaderParser);
    out.set('X-Fixups-Calls', String(this.fixupsCalls));
    out.set('X-Instance-Served', String(served));
    out.set('X-Request-Header', r.headersIn.get('X-Probe') ?? 'absent');
    try {
      out.set('X-Bad', 'one\r\nX-Injected: two');
    } catch (e) {
      if (e instanceof HttpdError && e.kind === 'invalid-value') out.set('X-Refused', 'InvalidValue');
    }
    return DECLINED;
  }

  handler(r) {
    if (r.handler !== 'probe') return DECLINED;
    const first = r.readBody(16); // written back as httpd gave it
    const rest = r.readBodyToEnd();
    r.contentType = 'text/plain';
    r.write(`probe handler read ${first.length + rest.length} bytes, q=${r.arg('q')}\n`);
    r.write(first);
    r.write('\n');
    return OK;
  }

  // Config "same": the body unchanged (the bytes as given), with a header saying so.
  outputFilter(r, data, at) {
    if (r.moduleConfig === 'same') {
      r.headersOut.set('X-Filtered', 'same');
      return data;
    }
    return new TextEncoder().encode(new TextDecoder().decode(data).toUpperCase());
  }

  authzProvider(r, requireLine) {
    if (requireLine !== 'header-pass') return GENERAL_ERROR;
    return r.headersIn.get('X-Pass') === 'yes' ? GRANTED : DENIED;
  }
}

export const { headerParser, fixups, handler, outputFilter, authzProvider, requestEnd } = exportModule(Probe);
