//! An output filter that inserts a snippet (the module's config string) just before the
//! first `</head>` of an HTML page:
//!
//! ```apache
//! WasmOutputFilter INJECT /var/www/wasm/html_inject.wasm "<script src=/rum.js></script>"
//! AddOutputFilterByType INJECT text/html
//! ```
//!
//! `</head>` is matched in any case, also when it is split across pieces of the body. Once
//! the snippet is in, the rest of the page streams through untouched; a page without
//! `</head>` goes out unchanged.
use mod_wasm_sdk::{export, ChunkEnd, FilterResult, Module, Replace, Request};

#[derive(Default)]
struct HtmlInject {
    /// Built on the first piece of the body, from the config string.
    insertion: Option<Replace>,
}

impl Module for HtmlInject {
    fn output_filter(&mut self, r: &Request, data: Vec<u8>, at: ChunkEnd) -> FilterResult {
        if self.insertion.is_none() {
            self.insertion = insertion_for(r);
        }
        match &mut self.insertion {
            Some(insertion) if !insertion.is_done() => FilterResult::Emit(insertion.feed(&data, at)),
            // Inserted, or nothing to insert: the rest of the body goes on untouched.
            _ => FilterResult::Pass,
        }
    }
}

/// Puts the config string before the first `</head>`; None if there is nothing to insert.
fn insertion_for(r: &Request) -> Option<Replace> {
    let snippet = r.module_config().filter(|s| !s.is_empty())?;
    // Compressed bytes cannot be searched (static .gz files set content_encoding, proxied
    // responses the header); passing at once also keeps Content-Length.
    if r.content_encoding().is_some() || r.headers_out().get("Content-Encoding").is_some() {
        return None;
    }
    Some(before_head(&snippet))
}

fn before_head(snippet: &str) -> Replace {
    Replace::insert_before("</head>", snippet).ignore_ascii_case().once()
}

export!(HtmlInject => output_filter);

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `page` in two pieces cut at every place, as the filter does.
    fn every_split(page: &str) -> String {
        let mut results = (0..=page.len()).map(|cut| {
            let mut insert = before_head("<script src=/rum.js></script>");
            let mut out = insert.feed(&page.as_bytes()[..cut], ChunkEnd::More);
            out.extend(insert.feed(&page.as_bytes()[cut..], ChunkEnd::End));
            String::from_utf8(out).unwrap()
        });
        let first = results.next().unwrap();
        assert!(results.all(|out| out == first));
        first
    }

    #[test]
    fn inserts_before_the_first_head_end_tag_in_any_case() {
        assert_eq!(
            every_split("<html><head><title>Hi</title></HEAD><body></head></body>"),
            "<html><head><title>Hi</title><script src=/rum.js></script></HEAD><body></head></body>"
        );
        assert_eq!(every_split("<p>no head</p>"), "<p>no head</p>");
    }

    #[test]
    fn is_done_once_inserted() {
        let mut insert = before_head("x");
        assert_eq!(insert.feed(b"<head></he", ChunkEnd::More), b"<head>");
        assert!(!insert.is_done());
        assert_eq!(insert.feed(b"ad>", ChunkEnd::More), b"x</head>");
        assert!(insert.is_done());
    }
}
