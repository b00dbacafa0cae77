// mod_wasm's JavaScript SDK: extension modules for httpd (`WasmApacheModule`) in JavaScript,
// built with componentize-js. The same shape as the Python SDK:
//
//   import { DECLINED, Module, exportModule } from './mod_wasm_sdk.js';
//
//   class AddHeader extends Module {
//     fixups(r) {
//       r.headersOut.set('X-Hello', 'from JavaScript');
//       return DECLINED;
//     }
//   }
//   export const { fixups, requestEnd } = exportModule(AddHeader);
//
// Methods are named after the WIT's exports in camelCase (accessChecker, logTransaction,
// outputFilter, authzProvider ...); `sdk-js/build.mjs` builds a component exporting the
// ones the file exports. One object of the class serves one request (its subrequests and
// internal redirects included) and is dropped when the request ends (`requestEnd`).

// -- answers -----------------------------------------------------------------------------

// A hook returns one of these, or an HTTP status (300-599) as a number.
export const OK = Object.freeze({ tag: 'ok' });
export const DECLINED = Object.freeze({ tag: 'declined' });
export const DONE = Object.freeze({ tag: 'done' });

// A filter returns the bytes to pass on (Uint8Array or string), PASS, or a status. Where a
// piece of the body ends: 'more', 'flush' or 'end'.
export const PASS = Object.freeze({ tag: 'pass' });

// What an authorization provider answers.
export const GRANTED = 'granted';
export const DENIED = 'denied';
export const DENIED_NO_USER = 'denied-no-user';
export const NEUTRAL = 'neutral';
export const GENERAL_ERROR = 'general-error';

// httpd refused a change or a body operation: `kind` is 'invalid-value', 'wrong-phase' or 'io'.
export class HttpdError extends Error {
  constructor(kind, message) {
    super(`${kind}: ${message}`);
    this.name = 'HttpdError';
    this.kind = kind;
  }
}

// Calls a host function, turning its error result (thrown by componentize-js with the WIT
// error as `payload`) into an HttpdError.
function host(call) {
  try {
    return call();
  } catch (e) {
    if (e && e.payload && typeof e.payload.tag === 'string') throw new HttpdError(e.payload.tag, e.payload.val);
    throw e;
  }
}

const encoder = new TextEncoder();

// Bytes from httpd are made by componentize-js's bindings in another realm, so they are not
// `instanceof Uint8Array` here: every byte array is checked with ArrayBuffer.isView and
// rewrapped as this realm's Uint8Array (same memory, no copy).
function ownBytes(view) {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function asBytes(data) {
  if (typeof data === 'string') return encoder.encode(data);
  if (ArrayBuffer.isView(data)) return ownBytes(data);
  throw new TypeError(`expected a string or a Uint8Array, not ${typeof data}`);
}

// -- the request -------------------------------------------------------------------------

// One of the request's apr tables; names are case-insensitive and may hold several values.
class Table {
  constructor(raw, which) {
    this.raw = raw;
    this.which = which;
  }
  get(name) { return this.raw.tableGet(this.which, name); }
  has(name) { return this.raw.tableGet(this.which, name) !== undefined; }
  getAll(name) { return this.raw.tableGetAll(this.which, name); }
  set(name, value) { host(() => this.raw.tableSet(this.which, name, value)); }
  add(name, value) { host(() => this.raw.tableAdd(this.which, name, value)); }
  merge(name, value) { host(() => this.raw.tableMerge(this.which, name, value)); }
  delete(name) { this.raw.tableUnset(this.which, name); }
  entries() { return this.raw.tableEntries(this.which); }
}

// A `WasmSharedStore` granted to this module: values are bytes, with a time to live.
class SharedStore {
  constructor(raw, name) {
    this.raw = raw;
    this.name = name;
  }
  get(key) {
    const value = host(() => this.raw.storeGet(this.name, key));
    return value === undefined ? undefined : ownBytes(value);
  }
  set(key, value, ttlSeconds) { host(() => this.raw.storeSet(this.name, key, asBytes(value), ttlSeconds)); }
  delete(key) { host(() => this.raw.storeDelete(this.name, key)); }
}

export class Request {
  constructor(raw) { this.raw = raw; }

  get method() { return this.raw.method(); }
  get unparsedUri() { return this.raw.unparsedUri(); }
  get theRequest() { return this.raw.theRequest(); }
  get protocol() { return this.raw.protocol(); }
  get hostname() { return this.raw.hostname(); }
  get port() { return this.raw.port(); }
  get pathInfo() { return this.raw.pathInfo(); }
  get canonicalFilename() { return this.raw.canonicalFilename(); }
  get contentEncoding() { return this.raw.contentEncoding(); }
  get apAuthType() { return this.raw.apAuthType(); }
  get useragentIp() { return this.raw.useragentIp(); }
  get isHttps() { return this.raw.isHttps(); }
  get isInitialReq() { return this.raw.isInitialReq(); }
  get documentRoot() { return this.raw.documentRoot(); }
  get serverName() { return this.raw.serverName(); }
  get logId() { return this.raw.logId(); }
  get serial() { return this.raw.serial(); }
  // The config string of this module's directive line, or undefined.
  get moduleConfig() { return this.raw.moduleConfig(); }

  get uri() { return this.raw.uri(); }
  set uri(v) { host(() => this.raw.setUri(v)); }
  get args() { return this.raw.args(); }
  set args(v) { host(() => this.raw.setArgs(v)); }
  get filename() { return this.raw.filename(); }
  set filename(v) { host(() => this.raw.setFilename(v)); }
  get handler() { return this.raw.handler(); }
  set handler(v) { host(() => this.raw.setHandler(v)); }
  get contentType() { return this.raw.contentType(); }
  set contentType(v) { host(() => this.raw.setContentType(v)); }
  get status() { return this.raw.status(); }
  set status(v) { host(() => this.raw.setStatus(v)); }
  get user() { return this.raw.user(); }
  set user(v) { host(() => this.raw.setUser(v)); }

  get headersIn() { return new Table(this.raw, 'headers-in'); }
  get headersOut() { return new Table(this.raw, 'headers-out'); }
  // Response headers kept on error responses too.
  get errHeadersOut() { return new Table(this.raw, 'err-headers-out'); }
  get notes() { return new Table(this.raw, 'notes'); }
  get subprocessEnv() { return new Table(this.raw, 'subprocess-env'); }

  // The value of query parameter `name` (not percent-decoded), or undefined.
  arg(name) {
    for (const pair of (this.args ?? '').split('&')) {
      const at = pair.indexOf('=');
      if ((at < 0 ? pair : pair.slice(0, at)) === name) return at < 0 ? '' : pair.slice(at + 1);
    }
    return undefined;
  }

  // Up to `max` bytes of the request body (a Uint8Array); an empty one at its end.
  readBody(max = 65536) { return ownBytes(host(() => this.raw.readBody(max))); }
  readBodyToEnd() {
    const chunks = [];
    for (let chunk = this.readBody(); chunk.length > 0; chunk = this.readBody()) chunks.push(chunk);
    const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) { all.set(c, at); at += c.length; }
    return all;
  }
  // Appends to the response body (a string is sent as UTF-8).
  write(data) { host(() => this.raw.writeBody(asBytes(data))); }

  addOutputFilter(name) { host(() => this.raw.addOutputFilter(name)); }
  addInputFilter(name) { host(() => this.raw.addInputFilter(name)); }
  lookupUri(uri) { return host(() => this.raw.lookupUri(uri)); }
  lookupFile(path) { return host(() => this.raw.lookupFile(path)); }
  includeUri(uri) { return host(() => this.raw.includeUri(uri)); }
  internalRedirect(uri) { host(() => this.raw.internalRedirect(uri)); }
  sharedStore(name) { return new SharedStore(this.raw, name); }

  // Writes to httpd's error log in the request's context (`LogLevel wasm:<level>`).
  log(level, message) { this.raw.log(level, String(message)); }
  logError(message) { this.log('error', message); }
  logWarn(message) { this.log('warn', message); }
  logNotice(message) { this.log('notice', message); }
  logInfo(message) { this.log('info', message); }
  logDebug(message) { this.log('debug', message); }
}

// Base class of an extension module: define the methods of the phases you need.
export class Module {}

// -- exports -----------------------------------------------------------------------------

function status(name, value) {
  if (!Number.isInteger(value) || value < 300 || value > 599) {
    throw new RangeError(`${name} returned status ${value}: an answer's status must be 300-599`);
  }
  return { tag: 'http-status', val: value };
}

// How a wrong answer is named in the error: a variant by its tag, anything else as a string.
function shown(value) {
  return value && typeof value === 'object' && typeof value.tag === 'string' ? `{ tag: '${value.tag}' }` : String(value);
}

function hookResult(name, value) {
  if (value === OK || value === DECLINED || value === DONE) return value;
  if (typeof value === 'number') return status(name, value);
  throw new TypeError(`${name} returned ${shown(value)}: return OK, DECLINED, DONE or an HTTP status`);
}

function filterResult(name, value) {
  if (ArrayBuffer.isView(value) || typeof value === 'string') return { tag: 'emit', val: asBytes(value) };
  if (value === PASS) return value;
  if (typeof value === 'number') return status(name, value);
  throw new TypeError(`${name} returned ${shown(value)}: return bytes, PASS or an HTTP status`);
}

const AUTHZ = new Set([GRANTED, DENIED, DENIED_NO_USER, NEUTRAL, GENERAL_ERROR]);

function authzResult(name, value) {
  if (AUTHZ.has(value)) return value;
  throw new TypeError(`${name} returned ${shown(value)}: return GRANTED, DENIED, DENIED_NO_USER, NEUTRAL or GENERAL_ERROR`);
}

// The methods a class defines, its base classes' included (Module's and Object's excluded;
// getters are not run). `requestEnd` is the SDK's own: a method of that name is not called.
function methodsOf(cls) {
  const names = new Set();
  for (let p = cls.prototype; p && p !== Module.prototype && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      const { value } = Object.getOwnPropertyDescriptor(p, name);
      if (name !== 'constructor' && name !== 'requestEnd' && typeof value === 'function') names.add(name);
    }
  }
  return names;
}

// The component's exports for `cls` (a Module subclass): an object per method, named as the
// WIT export in camelCase, plus `requestEnd`. Export those the module implements:
//   export const { accessChecker, requestEnd } = exportModule(AccessControl);
export function exportModule(cls) {
  if (!(typeof cls === 'function' && cls.prototype instanceof Module)) {
    throw new TypeError('exportModule() takes a class extending Module');
  }
  let serial = null;
  let current = null;
  const objectFor = (raw) => {
    const s = raw.serial();
    if (s !== serial) {
      serial = s;
      current = new cls();
    }
    return current;
  };
  const exports = {
    requestEnd: {
      requestEnd(s) {
        if (s === serial) serial = current = null;
      },
    },
  };
  for (const name of methodsOf(cls)) {
    let call;
    if (name === 'outputFilter' || name === 'inputFilter') {
      call = (raw, data, at) => filterResult(name, objectFor(raw)[name](new Request(raw), ownBytes(data), at));
    } else if (name === 'authzProvider') {
      call = (raw, line) => authzResult(name, objectFor(raw)[name](new Request(raw), line));
    } else {
      call = (raw) => hookResult(name, objectFor(raw)[name](new Request(raw)));
    }
    exports[name] = { [name]: call };
  }
  return exports;
}
