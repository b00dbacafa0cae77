"""mod_wasm's Python SDK: extension modules for httpd (`WasmApacheModule`) in Python.

A module is a class whose methods are named after httpd's phases (`fixups`,
`access_checker`, ...), filters (`output_filter`, `input_filter`) or `authz_provider`; every
phase it does not define declines. `export(MyModule)` at the end of the app file makes the
component's exports call it; `sdk-python/build.py app.py -o app.wasm` builds the component
with exactly the phases the class defines.

    from mod_wasm_sdk import DECLINED, Module, export

    class AddHeader(Module):
        def fixups(self, r):
            r.headers_out["X-Hello"] = "from Python"
            return DECLINED

    export(AddHeader)

One object of the class serves one request: it is made at the request's first call and
dropped when the request ends, so attributes set in one phase are seen by the later phases
(and filters) of the same request only — its subrequests and internal redirects included,
which share the object (`r.is_initial_req` tells them apart). Module-level values live as
long as the instance: one request under `WasmApacheModuleScope request`, many under
`server`. Module-level code runs once, when the component is built: import everything there.
"""

import sys

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import types as _t

__all__ = [
    "Module", "Request", "Table", "Lookup", "export",
    "OK", "DECLINED", "DONE",
    "Emit", "PASS", "MORE", "FLUSH", "END",
    "GRANTED", "DENIED", "DENIED_NO_USER", "NEUTRAL", "GENERAL_ERROR",
    "LogLevel", "HttpdError", "InvalidValue", "WrongPhase", "BodyError",
]

# -- answers ----------------------------------------------------------------------------------

# A hook returns one of these, or an HTTP status (300-599) as an int.
OK, DECLINED, DONE = _t.HookResult_Ok(), _t.HookResult_Declined(), _t.HookResult_Done()

# A filter returns bytes (or Emit(bytes)) to pass on, PASS to leave the rest of the body
# alone, or an HTTP status as an int. Where a piece of the body ends:
MORE, FLUSH, END = _t.ChunkEnd.MORE, _t.ChunkEnd.FLUSH, _t.ChunkEnd.END
Emit = _t.FilterResult_Emit
PASS = _t.FilterResult_Pass()

# What an authorization provider answers.
GRANTED, DENIED, DENIED_NO_USER = _t.AuthzResult.GRANTED, _t.AuthzResult.DENIED, _t.AuthzResult.DENIED_NO_USER
NEUTRAL, GENERAL_ERROR = _t.AuthzResult.NEUTRAL, _t.AuthzResult.GENERAL_ERROR

LogLevel = _t.LogLevel
Lookup = _t.Lookup


class HttpdError(Exception):
    """httpd refused a request change or a body operation; the message says why."""


class InvalidValue(HttpdError):
    """The value holds CR, LF or NUL, is out of range, or names a store not granted."""


class WrongPhase(HttpdError):
    """Not possible in this phase (writing the body outside the handler ...)."""


class BodyError(HttpdError):
    """Reading the request body, writing the response or reaching a store failed."""


_ERRORS = {_t.Error_InvalidValue: InvalidValue, _t.Error_WrongPhase: WrongPhase, _t.Error_Io: BodyError}


def _as_bytes(value):
    """str as UTF-8, or a bytes-like value; anything else (an int, say) is a TypeError."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected str or bytes, not {type(value).__name__}")


def _host(call, *args):
    """Calls a host function, turning its error result into one of the exceptions above."""
    try:
        return call(*args)
    except Err as e:
        raise _ERRORS[type(e.value)](e.value.value) from None


# -- the request ------------------------------------------------------------------------------

class Table:
    """One of the request's apr tables, dict-like; names are case-insensitive and a name may
    hold several values (`get_all`, `add`)."""

    __slots__ = ("_r", "_which")

    def __init__(self, raw, which):
        self._r, self._which = raw, which

    def get(self, name, default=None):
        value = self._r.table_get(self._which, name)
        return default if value is None else value

    def __getitem__(self, name):
        value = self._r.table_get(self._which, name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name):
        return self._r.table_get(self._which, name) is not None

    def get_all(self, name):
        return self._r.table_get_all(self._which, name)

    def __setitem__(self, name, value):
        """Replaces every value of `name` (InvalidValue for CR, LF or NUL)."""
        _host(self._r.table_set, self._which, name, value)

    def add(self, name, value):
        """Adds a value, keeping those already there."""
        _host(self._r.table_add, self._which, name, value)

    def merge(self, name, value):
        """Appends `value` to the existing one with ", " (apr_table_merge)."""
        _host(self._r.table_merge, self._which, name, value)

    def __delitem__(self, name):
        """Removes every value of `name`; no error if there is none."""
        self._r.table_unset(self._which, name)

    def items(self):
        """Every (name, value) pair, in order: a name added twice is listed twice."""
        return self._r.table_entries(self._which)

    def keys(self):
        """The names of items(), repeats included."""
        return [name for name, _ in self.items()]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.items())


class SharedStore:
    """A `WasmSharedStore` granted to this module: bytes values with a time to live."""

    __slots__ = ("_r", "_name")

    def __init__(self, raw, name):
        self._r, self._name = raw, name

    def get(self, key):
        """The value of `key` (bytes), or None if unset or expired."""
        return _host(self._r.store_get, self._name, key)

    def set(self, key, value, ttl_seconds):
        """Sets `key` to `value` (bytes, or str stored as UTF-8) for `ttl_seconds`."""
        _host(self._r.store_set, self._name, key, _as_bytes(value), ttl_seconds)

    def delete(self, key):
        _host(self._r.store_delete, self._name, key)


class Request:
    """The request being processed (httpd's request_rec), valid during one call."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw

    # Fields read with the same name as in request_rec; those httpd lets a module change are
    # settable (InvalidValue for a value httpd would refuse).
    method = property(lambda self: self.raw.method())
    unparsed_uri = property(lambda self: self.raw.unparsed_uri())
    the_request = property(lambda self: self.raw.the_request())
    protocol = property(lambda self: self.raw.protocol())
    hostname = property(lambda self: self.raw.hostname())
    port = property(lambda self: self.raw.port())
    path_info = property(lambda self: self.raw.path_info())
    canonical_filename = property(lambda self: self.raw.canonical_filename())
    content_encoding = property(lambda self: self.raw.content_encoding())
    ap_auth_type = property(lambda self: self.raw.ap_auth_type())
    useragent_ip = property(lambda self: self.raw.useragent_ip())
    is_https = property(lambda self: self.raw.is_https())
    is_initial_req = property(lambda self: self.raw.is_initial_req())
    document_root = property(lambda self: self.raw.document_root())
    server_name = property(lambda self: self.raw.server_name())
    log_id = property(lambda self: self.raw.log_id())
    serial = property(lambda self: self.raw.serial())
    module_config = property(lambda self: self.raw.module_config(),
                             doc="The config string of this module's directive line, or None.")

    uri = property(lambda self: self.raw.uri(), lambda self, v: _host(self.raw.set_uri, v))
    args = property(lambda self: self.raw.args(), lambda self, v: _host(self.raw.set_args, v))
    filename = property(lambda self: self.raw.filename(), lambda self, v: _host(self.raw.set_filename, v))
    handler = property(lambda self: self.raw.handler(), lambda self, v: _host(self.raw.set_handler, v))
    content_type = property(lambda self: self.raw.content_type(),
                            lambda self, v: _host(self.raw.set_content_type, v))
    status = property(lambda self: self.raw.status(), lambda self, v: _host(self.raw.set_status, v))
    user = property(lambda self: self.raw.user(), lambda self, v: _host(self.raw.set_user, v))

    headers_in = property(lambda self: Table(self.raw, _t.Table.HEADERS_IN))
    headers_out = property(lambda self: Table(self.raw, _t.Table.HEADERS_OUT))
    err_headers_out = property(lambda self: Table(self.raw, _t.Table.ERR_HEADERS_OUT),
                               doc="Response headers kept on error responses too.")
    notes = property(lambda self: Table(self.raw, _t.Table.NOTES))
    subprocess_env = property(lambda self: Table(self.raw, _t.Table.SUBPROCESS_ENV))

    def arg(self, name):
        """The value of query parameter `name` (not percent-decoded), or None."""
        for pair in (self.raw.args() or "").split("&"):
            key, _, value = pair.partition("=")
            if key == name:
                return value
        return None

    def read_body(self, max=65536):
        """Up to `max` bytes of the request body; b"" at its end."""
        return _host(self.raw.read_body, max)

    def read_body_to_end(self):
        chunks = []
        while chunk := self.read_body():
            chunks.append(chunk)
        return b"".join(chunks)

    def write(self, data):
        """Appends to the response body (str is sent as UTF-8)."""
        _host(self.raw.write_body, _as_bytes(data))

    def add_output_filter(self, name):
        _host(self.raw.add_output_filter, name)

    def add_input_filter(self, name):
        _host(self.raw.add_input_filter, name)

    def lookup_uri(self, uri):
        return _host(self.raw.lookup_uri, uri)

    def lookup_file(self, path):
        return _host(self.raw.lookup_file, path)

    def include_uri(self, uri):
        return _host(self.raw.include_uri, uri)

    def internal_redirect(self, uri):
        _host(self.raw.internal_redirect, uri)

    def shared_store(self, name):
        return SharedStore(self.raw, name)

    def log(self, level, message):
        """Writes to httpd's error log in the request's context (`LogLevel wasm:<level>`)."""
        self.raw.log(level, str(message))

    def log_error(self, message):
        self.log(LogLevel.ERROR, message)

    def log_warn(self, message):
        self.log(LogLevel.WARN, message)

    def log_notice(self, message):
        self.log(LogLevel.NOTICE, message)

    def log_info(self, message):
        self.log(LogLevel.INFO, message)

    def log_debug(self, message):
        self.log(LogLevel.DEBUG, message)


class Module:
    """Base class of an extension module: define the methods of the phases you need.

    Hooks take the Request and return OK, DECLINED, DONE or an HTTP status (int);
    `output_filter(r, data, at)` / `input_filter(r, data, at)` return bytes, PASS or a status;
    `authz_provider(r, require_line)` returns GRANTED, DENIED, ... ."""


# -- exports ----------------------------------------------------------------------------------

def _status(name, value):
    """An HTTP status a module answers with: an int from 300 to 599."""
    if not 300 <= value <= 599:
        raise ValueError(f"{name} returned status {value}: an answer's status must be 300-599")
    return value


def _hook_result(name, value):
    if isinstance(value, (_t.HookResult_Ok, _t.HookResult_Declined, _t.HookResult_Done, _t.HookResult_HttpStatus)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _t.HookResult_HttpStatus(_status(name, value))
    raise TypeError(f"{name} returned {value!r}: return OK, DECLINED, DONE or an HTTP status")


def _filter_result(name, value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _t.FilterResult_Emit(bytes(value))
    if isinstance(value, (_t.FilterResult_Emit, _t.FilterResult_Pass, _t.FilterResult_HttpStatus)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _t.FilterResult_HttpStatus(_status(name, value))
    raise TypeError(f"{name} returned {value!r}: return bytes, PASS or an HTTP status")


def _authz_result(name, value):
    if isinstance(value, _t.AuthzResult):
        return value
    raise TypeError(f"{name} returned {value!r}: return GRANTED, DENIED, DENIED_NO_USER, NEUTRAL or GENERAL_ERROR")


class _PerRequest:
    """The module object of the request being served, made at its first call."""

    def __init__(self, cls):
        self.cls, self.serial, self.value = cls, None, None

    def get(self, raw):
        serial = raw.serial()
        if serial != self.serial:
            self.serial, self.value = serial, self.cls()
        return self.value

    def end(self, serial):
        if serial == self.serial:
            self.serial, self.value = None, None


def _export_class(interface, method, current):
    """The class componentize-py instantiates for an exported interface: it hands each call
    to the request's module object."""
    if method == "request_end":
        def call(self, serial):
            current.end(serial)
    elif method in ("output_filter", "input_filter"):
        def call(self, raw, data, at):
            return _filter_result(method, getattr(current.get(raw), method)(Request(raw), data, at))
    elif method == "authz_provider":
        def call(self, raw, require_line):
            return _authz_result(method, getattr(current.get(raw), method)(Request(raw), require_line))
    else:
        def call(self, raw):
            return _hook_result(method, getattr(current.get(raw), method)(Request(raw)))
    return type(interface.__name__, (interface,), {method: call})


def export(cls):
    """Makes the component's exports call `cls` (a Module subclass): call it once, at the end
    of the app file. The component exports what build.py found the class defines; each of
    those calls the method of the same name."""
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"export() takes a Module subclass, not {cls!r}")
    current = _PerRequest(cls)
    app = sys.modules[cls.__module__]
    for name in dir(_exports):
        interface = getattr(_exports, name)
        if not isinstance(interface, type) or interface.__module__ != _exports.__name__:
            continue
        methods = [m for m in getattr(interface, "__abstractmethods__", ())]
        if len(methods) != 1:
            continue
        method = methods[0]
        if method != "request_end" and not callable(getattr(cls, method, None)):
            raise TypeError(f"the component exports {method} but {cls.__name__} does not define it")
        setattr(app, name, _export_class(interface, method, current))
