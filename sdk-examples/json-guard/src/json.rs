//! A JSON validator (RFC 8259): says whether a document is well-formed and, if not, where
//! it goes wrong. It builds nothing, so it needs no JSON library.

/// Deeper nesting is refused, as `serde_json` does: the parser recurses.
const MAX_DEPTH: usize = 128;

/// Checks that `text` is one JSON value with optional whitespace around it.
pub fn validate(text: &[u8]) -> Result<(), String> {
    // JSON exchanged between systems must be UTF-8; checked once here, so that strings
    // below can be skipped byte by byte.
    std::str::from_utf8(text).map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
    let mut p = Parser { s: text, i: 0 };
    p.whitespace();
    p.value(0)?;
    p.whitespace();
    match p.peek() {
        None => Ok(()),
        Some(_) => Err(p.fail("the end of the document")),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.i += usize::from(found);
        found
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.fail(what))
        }
    }

    fn fail(&self, expected: &str) -> String {
        match self.peek() {
            None => format!("expected {expected} at byte {}, found the end of the body", self.i),
            Some(b) => format!("expected {expected} at byte {}, found '{}'", self.i, b.escape_ascii()),
        }
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), String> {
        match self.peek() {
            Some(b'{') => self.container(depth + 1, b'}'),
            Some(b'[') => self.container(depth + 1, b']'),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            _ => Err(self.fail("a value")),
        }
    }

    /// An object (`close` is `}`: members are `"key": value`) or an array (`]`).
    fn container(&mut self, depth: usize, close: u8) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} at byte {}", self.i));
        }
        self.i += 1;
        self.whitespace();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            if close == b'}' {
                if self.peek() != Some(b'"') {
                    return Err(self.fail("a string key"));
                }
                self.string()?;
                self.whitespace();
                self.expect(b':', "':'")?;
                self.whitespace();
            }
            self.value(depth)?;
            self.whitespace();
            if self.eat(close) {
                return Ok(());
            }
            self.expect(b',', if close == b'}' { "',' or '}'" } else { "',' or ']'" })?;
            self.whitespace();
        }
    }

    fn string(&mut self) -> Result<(), String> {
        self.i += 1;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            self.i += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
                                    return Err(self.fail("a hex digit"));
                                }
                                self.i += 1;
                            }
                        }
                        _ => return Err(self.fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")),
                    }
                }
                None | Some(0..=0x1f) => return Err(self.fail("'\"' (control characters must be escaped)")),
                Some(_) => self.i += 1,
            }
        }
    }

    fn number(&mut self) -> Result<(), String> {
        self.eat(b'-');
        // No leading zeros: "0" alone, or a digit 1-9 first.
        if !self.eat(b'0') {
            self.digits()?;
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            self.digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) -> Result<(), String> {
        let n = self.s[self.i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return Err(self.fail("a digit"));
        }
        self.i += n;
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        if !self.s[self.i..].starts_with(word.as_bytes()) {
            return Err(self.fail(&format!("'{word}'")));
        }
        self.i += word.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_well_formed_documents() {
        for doc in [
            r#"{"a":[1,-2.5e+3,0,0.1E-2,true,false,null],"b":{"c":"\u00e9\n\"x\""},"d":[]}"#,
            " \r\n\t[ ] ",
            "\"grüße\"",
            "-0",
            "{ }",
        ] {
            assert_eq!(validate(doc.as_bytes()), Ok(()), "{doc}");
        }
        assert!(validate("[".repeat(128).as_bytes()).is_err());
        let deep = "[".repeat(128) + &"]".repeat(128);
        assert_eq!(validate(deep.as_bytes()), Ok(()));
    }

    #[test]
    fn says_where_a_document_goes_wrong() {
        let err = |doc: &[u8]| validate(doc).unwrap_err();
        assert_eq!(err(b"{\"a\":1,}"), "expected a string key at byte 7, found '}'");
        assert_eq!(err(b"[1 2]"), "expected ',' or ']' at byte 3, found '2'");
        assert_eq!(err(b"{\"a\":"), "expected a value at byte 5, found the end of the body");
        assert_eq!(err(b"01"), "expected the end of the document at byte 1, found '1'");
        assert_eq!(err(b"tru"), "expected 'true' at byte 0, found 't'");
        assert_eq!(err(b"\"a\tb\""), "expected '\"' (control characters must be escaped) at byte 2, found '\\t'");
        assert_eq!(
            err(b"\"\\x\""),
            "expected an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX) at byte 2, found 'x'"
        );
        assert_eq!(err(b"[1.]"), "expected a digit at byte 3, found ']'");
        assert_eq!(err(b"\"\xff\""), "not UTF-8 at byte 1");
        assert_eq!(err(b""), "expected a value at byte 0, found the end of the body");
        let deep = "[".repeat(129) + &"]".repeat(129);
        assert_eq!(err(deep.as_bytes()), "nested deeper than 128 at byte 128");
    }
}
