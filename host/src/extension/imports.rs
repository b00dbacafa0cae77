//! The host side of the `apache:httpd/types` imports: what a guest's calls on its `request`
//! do. Each call checks that its handle is the current call's request in the store's
//! resource table; a stale or forged handle is an error (a trap) for the guest.

use wasmtime::component::Resource;

use super::bindings::apache::httpd::types as wit;
use super::{ExtState, HookCall, RequestRef};
use crate::phase::{FilterKind, Phase, Stage};
use crate::request::{BodyError, Field, HttpdRequest, LogLevel, LookupOf, StoreOp, Table};

impl ExtState {
    /// The hook call `handle` belongs to: it must be the request handle of the call in
    /// progress (the host deletes each handle when its call returns).
    fn call(&mut self, handle: &R) -> wasmtime::Result<&mut HookCall> {
        let issued = self.table.get(handle).map_err(|e| wasmtime::format_err!("bad request handle: {e}"))?.call;
        match &mut self.call {
            Some(call) if call.number == issued => Ok(call),
            _ => Err(wasmtime::format_err!("request handle used outside its hook call")),
        }
    }

    fn field(&mut self, handle: &R, field: Field) -> wasmtime::Result<Option<String>> {
        Ok(self.call(handle)?.req.field(field))
    }

    fn set_field(&mut self, handle: &R, field: Field, value: Option<&str>) -> wasmtime::Result<Result<(), wit::Error>> {
        let call = self.call(handle)?;
        if let Some(v) = value {
            if let Err(e) = checked(v) {
                return Ok(Err(e));
            }
        }
        call.req.set_field(field, value);
        Ok(Ok(()))
    }

    fn table_write(
        &mut self,
        handle: &R,
        table: wit::Table,
        name: &str,
        value: &str,
        write: fn(&mut dyn HttpdRequest, Table, &str, &str),
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let call = self.call(handle)?;
        if let Err(e) = checked(name).and_then(|()| checked(value)) {
            return Ok(Err(e));
        }
        if name.is_empty() {
            return Ok(Err(wit::Error::InvalidValue("an empty name".into())));
        }
        write(call.req.as_mut(), table_of(table), name, value);
        Ok(Ok(()))
    }

    fn add_filter(&mut self, handle: &R, kind: FilterKind, name: &str) -> wasmtime::Result<Result<(), wit::Error>> {
        let call = self.call(handle)?;
        if matches!(call.stage, Stage::Filter(_) | Stage::Hook(Phase::LogTransaction)) {
            let msg = format!("filters are added in the request's hooks before its body flows, not in {}", call.stage.name());
            return Ok(Err(wit::Error::WrongPhase(msg)));
        }
        if let Err(e) = checked(name) {
            return Ok(Err(e));
        }
        Ok(call.req.add_filter(kind, name).map_err(wit::Error::InvalidValue))
    }

    /// A shared-store call: checked (granted to the module, within the limits), then run by
    /// httpd's provider. A provider failure is logged and reaches the guest as `io`.
    fn store_call(&mut self, handle: &R, store: &str, key: &str, op: StoreOp<'_>) -> wasmtime::Result<Result<Option<Vec<u8>>, wit::Error>> {
        let call = self.call(handle)?;
        let (backend, id) = match crate::store::check(store, call.slot.as_ref(), key, &op) {
            Ok(checked) => checked,
            Err(reason) => return Ok(Err(wit::Error::InvalidValue(reason))),
        };
        Ok(call.req.store(&backend, &id, op).map_err(|reason| {
            let message = format!("shared store {store}: {} failed: {reason}", op.verb());
            call.req.log(LogLevel::Error, &message);
            wit::Error::Io(message)
        }))
    }

    /// A lookup of a URI or file: not after the response (log-transaction), and a target
    /// that is a local path.
    fn lookup(&mut self, handle: &R, of: LookupOf, target: &str) -> wasmtime::Result<Result<wit::Lookup, wit::Error>> {
        let call = self.call(handle)?;
        if call.stage == Stage::Hook(Phase::LogTransaction) {
            return Ok(Err(wit::Error::WrongPhase("a lookup runs a subrequest, which log-transaction is too late for".into())));
        }
        if let Err(e) = checked_target(target, of) {
            return Ok(Err(e));
        }
        let found = match call.req.lookup(of, target) {
            Ok(found) => found,
            Err(reason) => return Ok(Err(wit::Error::WrongPhase(reason))),
        };
        Ok(Ok(wit::Lookup {
            status: found.status,
            filename: found.filename,
            exists: found.exists,
            content_type: found.content_type,
            handler: found.handler,
        }))
    }
}

/// A URI must be a local path (`/…`); a file path must not be empty. Neither may hold CR,
/// LF or NUL.
fn checked_target(target: &str, of: LookupOf) -> Result<(), wit::Error> {
    checked(target)?;
    match of {
        LookupOf::Uri if !target.starts_with('/') => {
            Err(wit::Error::InvalidValue(format!("`{target}` is not a local URI (it must start with /)")))
        }
        LookupOf::File if target.is_empty() => Err(wit::Error::InvalidValue("an empty file path".into())),
        _ => Ok(()),
    }
}

/// Refuses values that would split a header line or cut a C string.
fn checked(value: &str) -> Result<(), wit::Error> {
    match value.bytes().find(|b| matches!(b, b'\r' | b'\n' | 0)) {
        Some(b) => Err(wit::Error::InvalidValue(format!("the value contains byte {b:#04x} (CR, LF and NUL are refused)"))),
        None => Ok(()),
    }
}

fn table_of(table: wit::Table) -> Table {
    match table {
        wit::Table::HeadersIn => Table::HeadersIn,
        wit::Table::HeadersOut => Table::HeadersOut,
        wit::Table::ErrHeadersOut => Table::ErrHeadersOut,
        wit::Table::Notes => Table::Notes,
        wit::Table::SubprocessEnv => Table::SubprocessEnv,
    }
}

fn level_of(level: wit::LogLevel) -> LogLevel {
    use wit::LogLevel as L;
    match level {
        L::Emerg => LogLevel::Emerg,
        L::Alert => LogLevel::Alert,
        L::Crit => LogLevel::Crit,
        L::Error => LogLevel::Error,
        L::Warn => LogLevel::Warn,
        L::Notice => LogLevel::Notice,
        L::Info => LogLevel::Info,
        L::Debug => LogLevel::Debug,
        L::Trace1 => LogLevel::Trace1,
        L::Trace2 => LogLevel::Trace2,
        L::Trace3 => LogLevel::Trace3,
        L::Trace4 => LogLevel::Trace4,
        L::Trace5 => LogLevel::Trace5,
        L::Trace6 => LogLevel::Trace6,
        L::Trace7 => LogLevel::Trace7,
        L::Trace8 => LogLevel::Trace8,
    }
}

type R = Resource<RequestRef>;
type Res<T> = wasmtime::Result<T>;

impl wit::Host for ExtState {}

impl wit::HostRequest for ExtState {
    fn method(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::Method)?.unwrap_or_default())
    }
    fn uri(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::Uri)?.unwrap_or_default())
    }
    fn unparsed_uri(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::UnparsedUri)?.unwrap_or_default())
    }
    fn the_request(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::TheRequest)?.unwrap_or_default())
    }
    fn args(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::Args)
    }
    fn protocol(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::Protocol)?.unwrap_or_default())
    }
    fn hostname(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::Hostname)
    }
    fn port(&mut self, r: R) -> Res<u16> {
        Ok(self.call(&r)?.req.port())
    }
    fn path_info(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::PathInfo)
    }
    fn filename(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::Filename)
    }
    fn canonical_filename(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::CanonicalFilename)
    }
    fn handler(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::Handler)
    }
    fn content_type(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::ContentType)
    }
    fn content_encoding(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::ContentEncoding)
    }
    fn status(&mut self, r: R) -> Res<u16> {
        Ok(self.call(&r)?.req.status())
    }
    fn user(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::User)
    }
    fn ap_auth_type(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::ApAuthType)
    }
    fn useragent_ip(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::UseragentIp)?.unwrap_or_default())
    }
    fn is_https(&mut self, r: R) -> Res<bool> {
        Ok(self.call(&r)?.req.is_https())
    }
    fn is_initial_req(&mut self, r: R) -> Res<bool> {
        Ok(self.call(&r)?.req.is_initial_req())
    }
    fn document_root(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::DocumentRoot)?.unwrap_or_default())
    }
    fn server_name(&mut self, r: R) -> Res<String> {
        Ok(self.field(&r, Field::ServerName)?.unwrap_or_default())
    }
    fn log_id(&mut self, r: R) -> Res<Option<String>> {
        self.field(&r, Field::LogId)
    }

    fn set_uri(&mut self, r: R, value: String) -> Res<Result<(), wit::Error>> {
        self.call(&r)?;
        if !value.starts_with('/') {
            return Ok(Err(wit::Error::InvalidValue("a URI path starts with /".into())));
        }
        self.set_field(&r, Field::Uri, Some(&value))
    }
    fn set_args(&mut self, r: R, value: Option<String>) -> Res<Result<(), wit::Error>> {
        self.set_field(&r, Field::Args, value.as_deref())
    }
    fn set_filename(&mut self, r: R, value: String) -> Res<Result<(), wit::Error>> {
        self.set_field(&r, Field::Filename, Some(&value))
    }
    fn set_handler(&mut self, r: R, value: Option<String>) -> Res<Result<(), wit::Error>> {
        self.set_field(&r, Field::Handler, value.as_deref())
    }
    fn set_content_type(&mut self, r: R, value: String) -> Res<Result<(), wit::Error>> {
        self.set_field(&r, Field::ContentType, Some(&value))
    }
    fn set_status(&mut self, r: R, value: u16) -> Res<Result<(), wit::Error>> {
        let call = self.call(&r)?;
        if !crate::phase::HTTP_STATUSES.contains(&value) {
            return Ok(Err(wit::Error::InvalidValue(format!("{value} is not an HTTP status"))));
        }
        call.req.set_status(value);
        Ok(Ok(()))
    }
    fn set_user(&mut self, r: R, value: Option<String>) -> Res<Result<(), wit::Error>> {
        self.set_field(&r, Field::User, value.as_deref())
    }

    fn module_config(&mut self, r: R) -> Res<Option<String>> {
        Ok(self.call(&r)?.config.as_deref().map(str::to_owned))
    }
    fn serial(&mut self, r: R) -> Res<u64> {
        Ok(self.call(&r)?.serial)
    }

    fn table_get(&mut self, r: R, t: wit::Table, name: String) -> Res<Option<String>> {
        Ok(self.call(&r)?.req.table_get_all(table_of(t), &name).into_iter().next())
    }
    fn table_get_all(&mut self, r: R, t: wit::Table, name: String) -> Res<Vec<String>> {
        Ok(self.call(&r)?.req.table_get_all(table_of(t), &name))
    }
    fn table_set(&mut self, r: R, t: wit::Table, name: String, value: String) -> Res<Result<(), wit::Error>> {
        self.table_write(&r, t, &name, &value, |r, t, n, v| r.table_set(t, n, v))
    }
    fn table_add(&mut self, r: R, t: wit::Table, name: String, value: String) -> Res<Result<(), wit::Error>> {
        self.table_write(&r, t, &name, &value, |r, t, n, v| r.table_add(t, n, v))
    }
    fn table_merge(&mut self, r: R, t: wit::Table, name: String, value: String) -> Res<Result<(), wit::Error>> {
        self.table_write(&r, t, &name, &value, |r, t, n, v| r.table_merge(t, n, v))
    }
    fn table_unset(&mut self, r: R, t: wit::Table, name: String) -> Res<()> {
        self.call(&r)?.req.table_unset(table_of(t), &name);
        Ok(())
    }
    fn table_entries(&mut self, r: R, t: wit::Table) -> Res<Vec<(String, String)>> {
        Ok(self.call(&r)?.req.table_entries(table_of(t)))
    }

    fn read_body(&mut self, r: R, max: u32) -> Res<Result<Vec<u8>, wit::Error>> {
        let call = self.call(&r)?;
        if !call.stage.reads_body() {
            let msg = format!("the request body can be read in access-checker, quick-handler and handler, not {}", call.stage.name());
            return Ok(Err(wit::Error::WrongPhase(msg)));
        }
        let mut buf = vec![0u8; (max as usize).min(1 << 20)];
        match call.req.read_body(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Ok(buf))
            }
            Err(BodyError { message, .. }) => Ok(Err(wit::Error::Io(message))),
        }
    }
    fn write_body(&mut self, r: R, data: Vec<u8>) -> Res<Result<(), wit::Error>> {
        let call = self.call(&r)?;
        if !call.stage.writes_body() {
            let msg = format!("the response body can be written in quick-handler and handler, not {}", call.stage.name());
            return Ok(Err(wit::Error::WrongPhase(msg)));
        }
        Ok(call.req.write_body(&data).map_err(|e| wit::Error::Io(e.to_string())))
    }

    fn lookup_uri(&mut self, r: R, uri: String) -> Res<Result<wit::Lookup, wit::Error>> {
        self.lookup(&r, LookupOf::Uri, &uri)
    }
    fn lookup_file(&mut self, r: R, path: String) -> Res<Result<wit::Lookup, wit::Error>> {
        self.lookup(&r, LookupOf::File, &path)
    }
    fn include_uri(&mut self, r: R, uri: String) -> Res<Result<u16, wit::Error>> {
        let call = self.call(&r)?;
        if !call.stage.writes_body() {
            let msg = format!("include-uri writes into the response: in quick-handler and handler, not {}", call.stage.name());
            return Ok(Err(wit::Error::WrongPhase(msg)));
        }
        if let Err(e) = checked_target(&uri, LookupOf::Uri) {
            return Ok(Err(e));
        }
        Ok(Ok(call.req.include(&uri)))
    }
    fn internal_redirect(&mut self, r: R, uri: String) -> Res<Result<(), wit::Error>> {
        let call = self.call(&r)?;
        if call.stage != Stage::Hook(Phase::Handler) {
            let msg = format!("an internal redirect is the handler's answer, not {}'s", call.stage.name());
            return Ok(Err(wit::Error::WrongPhase(msg)));
        }
        if let Err(e) = checked_target(&uri, LookupOf::Uri) {
            return Ok(Err(e));
        }
        Ok(call.req.internal_redirect(&uri).map_err(wit::Error::WrongPhase))
    }

    fn store_get(&mut self, r: R, store: String, key: String) -> Res<Result<Option<Vec<u8>>, wit::Error>> {
        self.store_call(&r, &store, &key, StoreOp::Get)
    }
    fn store_set(&mut self, r: R, store: String, key: String, value: Vec<u8>, ttl_seconds: u32) -> Res<Result<(), wit::Error>> {
        Ok(self.store_call(&r, &store, &key, StoreOp::Set { value: &value, ttl_seconds })?.map(|_| ()))
    }
    fn store_delete(&mut self, r: R, store: String, key: String) -> Res<Result<(), wit::Error>> {
        Ok(self.store_call(&r, &store, &key, StoreOp::Delete)?.map(|_| ()))
    }

    fn add_output_filter(&mut self, r: R, name: String) -> Res<Result<(), wit::Error>> {
        self.add_filter(&r, FilterKind::Output, &name)
    }
    fn add_input_filter(&mut self, r: R, name: String) -> Res<Result<(), wit::Error>> {
        self.add_filter(&r, FilterKind::Input, &name)
    }

    fn log(&mut self, r: R, level: wit::LogLevel, message: String) -> Res<()> {
        self.call(&r)?.req.log(level_of(level), &message);
        Ok(())
    }

    fn drop(&mut self, _: R) -> Res<()> {
        // Guests only ever get borrows; the host deletes each handle after its hook call.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use wasmtime::component::{Resource, ResourceTable};
    use wasmtime_wasi::WasiCtxBuilder;

    use super::super::{ExtState, HookCall, RequestRef};
    use crate::phase::{Phase, Stage};
    use super::wit::HostRequest;
    use crate::limits::MemoryCap;
    use crate::testing::MemoryHttpdRequest;

    fn in_call(number: u64) -> ExtState {
        let req = MemoryHttpdRequest { uri: "/x".into(), ..Default::default() };
        ExtState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            call: Some(HookCall { req: Box::new(req), stage: Stage::Hook(Phase::Fixups), config: None, slot: None, serial: 7, number }),
            calls: number,
            output: Arc::new(Mutex::new(Default::default())),
            cap: MemoryCap::new(1 << 20),
        }
    }

    #[test]
    fn subrequests_and_redirects_keep_to_their_phases() {
        let mut state = in_call(1);
        let handle = state.table.push(RequestRef { call: 1 }).unwrap();
        let r = || Resource::<RequestRef>::new_borrow(handle.rep());
        let wrong_phase = |e| matches!(e, Err(super::wit::Error::WrongPhase(_)));
        // In fixups: lookups yes, writing into the response or redirecting no.
        assert_eq!(state.lookup_uri(r(), "/x".into()).unwrap().unwrap().filename.as_deref(), Some("/srv/x"));
        assert!(matches!(state.lookup_uri(r(), "x".into()).unwrap(), Err(super::wit::Error::InvalidValue(_))));
        assert!(matches!(state.lookup_uri(r(), "/a\r\nb".into()).unwrap(), Err(super::wit::Error::InvalidValue(_))));
        assert!(wrong_phase(state.include_uri(r(), "/x".into()).unwrap().map(|_| ())));
        assert!(wrong_phase(state.internal_redirect(r(), "/x".into()).unwrap()));
        state.call.as_mut().unwrap().stage = Stage::Hook(Phase::Handler);
        assert!(matches!(state.include_uri(r(), "/x".into()).unwrap(), Ok(200)));
        assert!(state.internal_redirect(r(), "/y".into()).unwrap().is_ok());
        state.call.as_mut().unwrap().stage = Stage::Hook(Phase::LogTransaction);
        assert!(wrong_phase(state.lookup_uri(r(), "/x".into()).unwrap().map(|_| ())));
    }

    #[test]
    fn only_the_current_calls_handle_reaches_the_request() {
        let mut state = in_call(1);
        let handle = state.table.push(RequestRef { call: 1 }).unwrap();
        let borrow = |rep| Resource::<RequestRef>::new_borrow(rep);
        assert_eq!(state.uri(borrow(handle.rep())).unwrap(), "/x");
        // A handle the host never issued, and one of another type in the same table.
        assert!(state.uri(borrow(handle.rep() + 100)).is_err());
        let other = state.table.push(5u32).unwrap();
        assert!(state.uri(borrow(other.rep())).is_err());
        assert!(state.set_status(borrow(other.rep()), 999).is_err(), "the handle is checked before the value");
        // A handle kept from an earlier call.
        state.call.as_mut().unwrap().number = 2;
        assert!(state.uri(borrow(handle.rep())).is_err());
        // No call in progress.
        state.call = None;
        assert!(state.serial(borrow(handle.rep())).is_err());
    }
}
