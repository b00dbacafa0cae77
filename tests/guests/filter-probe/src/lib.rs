//! Output and input filters for the filter tests; the config string of the
//! `WasmOutputFilter` / `WasmInputFilter` line picks behaviours (words, any order):
//!
//! - `upper`: ASCII-uppercases every piece;
//! - `log-calls`: logs each call at info: `filter-probe <output|input> <bytes> <more|flush|end>`;
//! - `subst=FROM/TO`: replaces every FROM with TO, also across pieces (the SDK's `Replace`);
//!   with no other word, the pieces go on unchanged (a copy through the guest: the benchmark's
//!   pass-through filter);
//! - `hold`: emits nothing until a flush or the end, then everything held;
//! - `count`: at the end appends `[calls=N bytes=M]` (pieces seen, bytes seen);
//! - `tag`: at the end appends `[tag=T]`, T being what this request's fixups hook read from
//!   the `X-Tag` request header (the same instance serves hooks and filters);
//! - `headers`: on the first call sets `X-Filtered: yes` and the content type `text/x-probe`;
//! - `pass`: answers pass (the body goes on untouched);
//! - `status-N`: the first call answers http-status(N);
//! - `trap-first` / `trap-second` / `trap-call=N`: panics in the first / second / Nth call;
//! - `spin-first`: loops forever in the first call (WasmTimeout stops it);
//! - `grow-first`: asks for 256 MiB in the first call (WasmMemoryLimit refuses it);
//! - input only, `refuse-bad`: answers http-status(400) for a piece containing `bad`.
//!
//! One request may run one output and one input filter of this module (the words are read
//! once per direction). Its fixups hook (as a `WasmApacheModule`) remembers `X-Tag` and,
//! when the request has `X-Add-Filter: NAME`, adds that output filter to the request. Its
//! handler (for `SetHandler filter-probe`) writes `xxab` and `cxx` 3000 times each, in turn
//! (21000 bytes in 6000 writes: httpd passes them to the filters while the handler runs).
use mod_wasm_sdk::{export, log_info, ChunkEnd, FilterResult, HookResult, Module, Replace, Request};

#[derive(Default)]
struct Probe {
    tag: Option<String>,
    calls: u32,
    bytes: usize,
    held: Vec<u8>,
    subst: Option<Replace>,
    /// The config string's words per direction, read on the first call (one host call, not
    /// one per word and piece: the benchmark's pass-through filter runs this guest). So one
    /// request runs at most one output and one input filter of this module.
    words: [Option<std::rc::Rc<[String]>>; 2],
}

fn at_name(at: ChunkEnd) -> &'static str {
    match at {
        ChunkEnd::More => "more",
        ChunkEnd::Flush => "flush",
        ChunkEnd::End => "end",
    }
}

impl Probe {
    fn filter(&mut self, r: &Request, direction: &str, mut data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        let words = self.words[usize::from(direction == "input")]
            .get_or_insert_with(|| r.module_config().unwrap_or_default().split_whitespace().map(str::to_owned).collect())
            .clone();
        let has = |word: &str| words.iter().any(|w| w == word);
        let word_value = |prefix: &str| words.iter().find_map(|w| w.strip_prefix(prefix).map(str::to_owned));
        self.calls += 1;
        self.bytes += data.len();
        if has("log-calls") {
            log_info!(r, "filter-probe {direction} {} {}", data.len(), at_name(at));
        }
        let trap_call = word_value("trap-call=").and_then(|n| n.parse().ok());
        if (self.calls == 1 && has("trap-first")) || (self.calls == 2 && has("trap-second")) || trap_call == Some(self.calls) {
            panic!("filter-probe was asked to fail in call {}", self.calls);
        }
        if self.calls == 1 && has("grow-first") {
            let big = std::hint::black_box(vec![1u8; 256 << 20]);
            data.push(big[big.len() - 1]);
        }
        if self.calls == 1 && has("spin-first") {
            #[allow(clippy::empty_loop)]
            loop {}
        }
        if self.calls == 1 {
            if let Some(status) = word_value("status-").and_then(|s| s.parse().ok()) {
                return FilterResult::HttpStatus(status);
            }
            if has("headers") {
                let _ = r.headers_out().set("X-Filtered", "yes");
                let _ = r.set_content_type("text/x-probe");
            }
        }
        if has("pass") {
            return FilterResult::Pass;
        }
        if has("refuse-bad") && data.windows(3).any(|w| w == b"bad") {
            return FilterResult::HttpStatus(400);
        }
        if has("upper") {
            data.make_ascii_uppercase();
        }
        if self.subst.is_none() {
            if let Some((from, to)) = word_value("subst=").as_deref().and_then(|w| w.split_once('/')) {
                self.subst = Some(Replace::new(from, to));
            }
        }
        if let Some(subst) = &mut self.subst {
            data = subst.feed(&data, at);
        }
        if has("hold") {
            self.held.extend_from_slice(&data);
            if at == ChunkEnd::More {
                return FilterResult::Emit(Vec::new());
            }
            data = std::mem::take(&mut self.held);
        }
        if at == ChunkEnd::End {
            if has("count") {
                data.extend_from_slice(format!("[calls={} bytes={}]", self.calls, self.bytes).as_bytes());
            }
            if has("tag") {
                data.extend_from_slice(format!("[tag={}]", self.tag.as_deref().unwrap_or("none")).as_bytes());
            }
        }
        FilterResult::Emit(data)
    }
}

impl Module for Probe {
    fn fixups(&mut self, r: &Request) -> HookResult {
        self.tag = r.headers_in().get("X-Tag");
        if let Some(name) = r.headers_in().get("X-Add-Filter") {
            if let Err(e) = r.add_output_filter(&name) {
                let _ = r.headers_out().set("X-Add-Filter-Error", &format!("{e:?}"));
            }
        }
        HookResult::Declined
    }

    fn handler(&mut self, r: &Request) -> HookResult {
        if r.handler().as_deref() != Some("filter-probe") {
            return HookResult::Declined;
        }
        for _ in 0..3000 {
            if r.write_body(b"xxab").and_then(|()| r.write_body(b"cxx")).is_err() {
                break;
            }
        }
        HookResult::Ok
    }

    fn output_filter(&mut self, r: &Request, data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        self.filter(r, "output", data, at)
    }

    fn input_filter(&mut self, r: &Request, data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        self.filter(r, "input", data, at)
    }
}

export!(Probe => fixups, handler, output_filter, input_filter);
