//! Finds e-mail addresses in a streamed body, without regex (a small component).
//!
//! An address is `local@domain`: the local part is one or more of `A-Z a-z 0-9 . _ % + -`,
//! the domain two or more labels of `A-Z a-z 0-9 -` joined by dots, the last one (the TLD)
//! two or more letters. The domain is the longest such run of whole labels, so a sentence's
//! final dot stays out of it. Addresses never contain other bytes, so text is searched in
//! runs of address bytes.
use mod_wasm_sdk::ChunkEnd;

pub const REDACTED: &[u8] = b"[redacted]";

/// The longest run of address bytes held back between pieces. A longer run is no address
/// (they are at most 254 bytes) and is scanned as it is, so that memory stays bounded.
pub const MAX_HELD: usize = 512;

/// Redacts addresses in a body fed piece by piece, including addresses split across pieces.
#[derive(Default)]
pub struct Redactor {
    /// A trailing run of address bytes whose end has not been seen yet.
    held: Vec<u8>,
}

impl Redactor {
    /// The next piece of the body: returns what goes on. At [`ChunkEnd::Flush`] and
    /// [`ChunkEnd::End`] nothing is held back.
    pub fn feed(&mut self, data: Vec<u8>, at: ChunkEnd) -> Vec<u8> {
        let mut text = if self.held.is_empty() {
            data
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(&data);
            joined
        };
        if at == ChunkEnd::More {
            let run = text.iter().rev().take(MAX_HELD + 1).take_while(|&&b| is_address_byte(b)).count();
            if run <= MAX_HELD {
                self.held = text.split_off(text.len() - run);
            }
        }
        // Most text has no '@': send it on without a copy.
        if !text.contains(&b'@') {
            return text;
        }
        let mut out = Vec::with_capacity(text.len());
        redact(&text, &mut out);
        out
    }

    /// Bytes held back for the next piece.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.len()
    }
}

/// Appends `text` to `out` with every address replaced by [`REDACTED`].
pub fn redact(text: &[u8], out: &mut Vec<u8>) {
    // Bytes before `copied` are in `out`; the local part of an address starts at or after it.
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].iter().position(|&b| b == b'@') {
        let at = from + found;
        let local = text[copied..at].iter().rev().take_while(|&&b| is_local_byte(b)).count();
        match domain_len(&text[at + 1..]) {
            Some(domain) if local > 0 => {
                out.extend_from_slice(&text[copied..at - local]);
                out.extend_from_slice(REDACTED);
                copied = at + 1 + domain;
                from = copied;
            }
            _ => from = at + 1,
        }
    }
    out.extend_from_slice(&text[copied..]);
}

/// The length of the domain at the start of `s`: the longest run of whole labels that ends
/// with a TLD, or None.
fn domain_len(s: &[u8]) -> Option<usize> {
    let mut end = None;
    let mut labels = 0;
    let mut i = 0;
    loop {
        let label = s[i..].iter().take_while(|&&b| b.is_ascii_alphanumeric() || b == b'-').count();
        if label == 0 {
            return end;
        }
        labels += 1;
        let is_tld = label >= 2 && s[i..i + label].iter().all(u8::is_ascii_alphabetic);
        i += label;
        if labels >= 2 && is_tld {
            end = Some(i);
        }
        if s.get(i) != Some(&b'.') {
            return end;
        }
        i += 1;
    }
}

fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_address_byte(b: u8) -> bool {
    is_local_byte(b) || b == b'@'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str) -> String {
        String::from_utf8(Redactor::default().feed(text.into(), ChunkEnd::End)).unwrap()
    }

    /// Feeds `text` cut at every pair of places into three pieces: the result must not
    /// depend on where the cuts fall.
    fn every_split(text: &str) -> String {
        let body = text.as_bytes();
        let expected = whole(text);
        for a in 0..=body.len() {
            for b in a..=body.len() {
                let mut r = Redactor::default();
                let mut out = r.feed(body[..a].to_vec(), ChunkEnd::More);
                out.extend(r.feed(body[a..b].to_vec(), ChunkEnd::More));
                out.extend(r.feed(body[b..].to_vec(), ChunkEnd::End));
                assert_eq!(String::from_utf8(out).unwrap(), expected, "cut at {a} and {b}");
            }
        }
        expected
    }

    #[test]
    fn redacts_addresses_wherever_the_body_is_cut() {
        assert_eq!(
            every_split("Mail alice@example.com or bob.smith+news@mail.example.org."),
            "Mail [redacted] or [redacted]."
        );
        assert_eq!(
            every_split("Sales: sales@example.com, support: help.desk+web@support.example.co.uk.\n"),
            "Sales: [redacted], support: [redacted].\n"
        );
        assert_eq!(
            every_split(r#"{"to":"x_y%z-1@a-b.c.io","cc":"q@r.de"}"#),
            r#"{"to":"[redacted]","cc":"[redacted]"}"#
        );
        assert_eq!(
            every_split("<a href=\"mailto:me@host.net\">me@host.net</a>"),
            "<a href=\"mailto:[redacted]\">[redacted]</a>"
        );
    }

    #[test]
    fn leaves_what_is_not_an_address() {
        for text in
            ["a@localhost", "@example.com", "a@.com", "a@b.c", "a@b.c0m", "a@1.23", "user@ example.com", "no at sign"]
        {
            assert_eq!(every_split(text), text);
        }
    }

    #[test]
    fn the_domain_ends_at_the_last_whole_label_with_a_tld() {
        assert_eq!(whole("a@b.com.x"), "[redacted].x");
        assert_eq!(whole("a@b.com..org"), "[redacted]..org");
        assert_eq!(whole("a@b.com1"), "a@b.com1");
        assert_eq!(whole("a@b.co@c.de"), "[redacted]@c.de");
        assert_eq!(whole("x@@a.b@c.com"), "x@@[redacted]");
    }

    #[test]
    fn holds_back_only_a_bounded_trailing_run() {
        let mut r = Redactor::default();
        assert_eq!(r.feed(b"write to jo".to_vec(), ChunkEnd::More), b"write to ");
        assert_eq!(r.held(), 2);
        assert_eq!(r.feed(b"e@exa".to_vec(), ChunkEnd::More), b"");
        assert_eq!(r.feed(b"mple.com".to_vec(), ChunkEnd::Flush), b"[redacted]");
        assert_eq!(r.held(), 0);

        // A run longer than MAX_HELD goes on at once.
        let long = vec![b'a'; MAX_HELD + 1];
        assert_eq!(r.feed(long.clone(), ChunkEnd::More), long);
        assert_eq!(r.held(), 0);
        let mut r = Redactor::default();
        assert!(r.feed(vec![b'a'; MAX_HELD], ChunkEnd::More).is_empty());
        assert_eq!(r.feed(b" ".to_vec(), ChunkEnd::More).len(), MAX_HELD + 1);
    }

    #[test]
    fn non_ascii_text_is_kept() {
        assert_eq!(
            every_split("Grüße an jürgen@exämple.de, ann@beispiel.de"),
            "Grüße an jürgen@exämple.de, [redacted]"
        );
    }
}
