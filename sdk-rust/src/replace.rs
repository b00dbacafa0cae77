//! Find-and-replace over a body that arrives in pieces.

use crate::ChunkEnd;

/// Replaces a fixed byte pattern in a streamed body, including occurrences split across
/// pieces: it holds back at most `pattern.len() - 1` bytes (a possible start of the pattern)
/// until the next piece shows whether they match.
///
/// ```
/// use mod_wasm_sdk::{ChunkEnd, Replace};
///
/// let mut r = Replace::insert_before("</head>", "<script src=/rum.js></script>").ignore_ascii_case().once();
/// let mut out = r.feed(b"<html><head><title>x</title></HE", ChunkEnd::More);
/// out.extend(r.feed(b"AD><body>", ChunkEnd::End));
/// assert_eq!(out, b"<html><head><title>x</title><script src=/rum.js></script></HEAD><body>");
/// ```
#[derive(Clone, Debug)]
pub struct Replace {
    /// Lower-cased when matching ignores ASCII case.
    pattern: Vec<u8>,
    /// Searches for `pattern` (made once: it precomputes the search); matching that ignores
    /// case searches on its own and leaves it unused.
    finder: memchr::memmem::Finder<'static>,
    replacement: Vec<u8>,
    /// The matched bytes follow the replacement (insert_before).
    keep_match: bool,
    ignore_case: bool,
    limit: Option<usize>,
    replaced: usize,
    /// Bytes held back: a prefix of the pattern at the end of the last piece.
    tail: Vec<u8>,
}

impl Replace {
    /// Replaces every occurrence of `pattern` (an empty pattern matches nothing).
    pub fn new(pattern: impl AsRef<[u8]>, replacement: impl AsRef<[u8]>) -> Self {
        Replace {
            pattern: pattern.as_ref().to_vec(),
            finder: memchr::memmem::Finder::new(pattern.as_ref()).into_owned(),
            replacement: replacement.as_ref().to_vec(),
            keep_match: false,
            ignore_case: false,
            limit: None,
            replaced: 0,
            tail: Vec::new(),
        }
    }

    /// Inserts `text` before every occurrence of `pattern`, which stays as it was (with
    /// [`Replace::ignore_ascii_case`], in its own case).
    pub fn insert_before(pattern: impl AsRef<[u8]>, text: impl AsRef<[u8]>) -> Self {
        Replace { keep_match: true, ..Replace::new(pattern, text) }
    }

    /// Matches ASCII letters in either case.
    pub fn ignore_ascii_case(mut self) -> Self {
        self.ignore_case = true;
        self.pattern.make_ascii_lowercase();
        self
    }

    /// Replaces only the first occurrence.
    pub fn once(self) -> Self {
        self.at_most(1)
    }

    /// Replaces at most `n` occurrences; the rest of the body passes unchanged.
    pub fn at_most(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Occurrences replaced so far.
    pub fn replaced(&self) -> usize {
        self.replaced
    }

    /// True once no more replacements will be made and nothing is held back: the rest of
    /// the body can pass unchanged ([`crate::FilterResult::Pass`]).
    pub fn is_done(&self) -> bool {
        self.tail.is_empty() && (self.pattern.is_empty() || self.exhausted())
    }

    /// The `at_most` limit is reached.
    fn exhausted(&self) -> bool {
        self.limit.is_some_and(|n| self.replaced >= n)
    }

    /// The next piece of the body: returns what goes on. At [`ChunkEnd::Flush`] and
    /// [`ChunkEnd::End`] nothing is held back (a pattern split across a flush is not seen,
    /// as with mod_substitute).
    pub fn feed(&mut self, data: &[u8], at: ChunkEnd) -> Vec<u8> {
        let joined;
        let input: &[u8] = if self.tail.is_empty() {
            data
        } else {
            let mut buf = std::mem::take(&mut self.tail);
            buf.extend_from_slice(data);
            joined = buf;
            &joined
        };
        let mut out = Vec::with_capacity(input.len());
        let mut i = 0;
        let n = self.pattern.len();
        while n > 0 && !self.exhausted() {
            let Some(found) = self.find(&input[i..]) else { break };
            let start = i + found;
            if start + n > input.len() {
                // A possible start of the pattern at the very end: hold it back.
                if at == ChunkEnd::More {
                    out.extend_from_slice(&input[i..start]);
                    self.tail = input[start..].to_vec();
                    return out;
                }
                break;
            }
            out.extend_from_slice(&input[i..start]);
            out.extend_from_slice(&self.replacement);
            if self.keep_match {
                out.extend_from_slice(&input[start..start + n]);
            }
            self.replaced += 1;
            i = start + n;
        }
        out.extend_from_slice(&input[i..]);
        out
    }

    /// The offset of the first full match in `hay`, or else of a prefix of the pattern that
    /// runs to its end.
    fn find(&self, hay: &[u8]) -> Option<usize> {
        let n = self.pattern.len();
        let full = if self.ignore_case {
            let (lower, upper) = (self.pattern[0], self.pattern[0].to_ascii_uppercase());
            memchr::memchr2_iter(lower, upper, hay).find(|&at| at + n <= hay.len() && self.same(&hay[at..at + n], &self.pattern))
        } else {
            self.finder.find(hay)
        };
        full.or_else(|| {
            // Only the last n-1 bytes can start a pattern cut off by the end of the piece.
            let from = hay.len().saturating_sub(n - 1);
            (from..hay.len()).find(|&at| self.same(&hay[at..], &self.pattern[..hay.len() - at]))
        })
    }

    fn same(&self, a: &[u8], b: &[u8]) -> bool {
        if self.ignore_case {
            a.iter().zip(b).all(|(x, y)| x.to_ascii_lowercase() == *y)
        } else {
            a == b
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` cut at every possible place into two and three pieces: the result must
    /// not depend on where the cuts fall.
    fn every_split(r: &Replace, body: &[u8]) -> Vec<u8> {
        let whole = r.clone().feed(body, ChunkEnd::End);
        for a in 0..=body.len() {
            for b in a..=body.len() {
                let mut r = r.clone();
                let mut out = r.feed(&body[..a], ChunkEnd::More);
                out.extend(r.feed(&body[a..b], ChunkEnd::More));
                out.extend(r.feed(&body[b..], ChunkEnd::End));
                assert_eq!(out, whole, "cut at {a} and {b}");
            }
        }
        whole
    }

    #[test]
    fn replaces_across_any_split() {
        assert_eq!(every_split(&Replace::new("abc", "X"), b"zabcabxabcab"), b"zXabxXab");
        assert_eq!(every_split(&Replace::new("aab", "-"), b"aaab aab aa"), b"a- - aa");
    }

    #[test]
    fn ignores_case_and_stops_after_the_limit() {
        let r = Replace::new("</Head>", "<x></head>").ignore_ascii_case().once();
        assert_eq!(every_split(&r, b"<HEAD></HEAD></head>"), b"<HEAD><x></head></head>");
        let mut r = r.clone();
        assert!(!r.is_done());
        r.feed(b"a</head>", ChunkEnd::More);
        assert!(r.is_done() && r.replaced() == 1);
    }

    #[test]
    fn inserts_before_keeping_the_match_as_it_was() {
        let r = Replace::insert_before("</head>", "<s>").ignore_ascii_case();
        assert_eq!(every_split(&r, b"a</HEAD>b</head>"), b"a<s></HEAD>b<s></head>");
    }

    #[test]
    fn holds_back_only_a_possible_start_and_nothing_at_a_flush() {
        let mut r = Replace::new("abc", "X");
        assert_eq!(r.feed(b"xxab", ChunkEnd::More), b"xx");
        assert_eq!(r.feed(b"", ChunkEnd::Flush), b"ab");
        assert_eq!(r.feed(b"c", ChunkEnd::End), b"c");
        assert_eq!(Replace::new("", "X").feed(b"abc", ChunkEnd::More), b"abc");
    }
}
