//! A CGI program's stdout, written in arbitrary pieces: the header block handed to httpd's
//! parser is exactly the bytes up to the first blank line, the body exactly the rest, and a
//! block without an end past 64 KiB is refused.
#![no_main]

use host::testing::fuzzing::cgi_output;
use host::exchange::{Outcome, MAX_CGI_HEADER_BLOCK};
use libfuzzer_sys::fuzz_target;

/// Where the first header block ends (just past its blank line), by the plain definition.
fn first_block_end(data: &[u8]) -> Option<usize> {
    if data.starts_with(b"\n") {
        return Some(1);
    }
    if data.starts_with(b"\r\n") {
        return Some(2);
    }
    (0..data.len()).find_map(|i| {
        if data[i] != b'\n' {
            None
        } else if data[i + 1..].starts_with(b"\n") {
            Some(i + 2)
        } else if data[i + 1..].starts_with(b"\r\n") {
            Some(i + 3)
        } else {
            None
        }
    })
}

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (cuts, data) = input;
    // Cut the output into pieces of the given sizes (the rest in one piece).
    let mut chunks = Vec::new();
    let mut rest = &data[..];
    for cut in cuts {
        let n = (cut as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    let result = cgi_output(&chunks);
    let end = first_block_end(&data);
    match (&result.header_block, &result.outcome) {
        (None, Some(Outcome::Status(500))) => {
            assert!(end.map_or(true, |e| e > MAX_CGI_HEADER_BLOCK), "refused a block ending at {end:?}");
        }
        (Some(block), Some(outcome)) => {
            match end {
                // The block handed to the parser is exactly the bytes up to the blank line.
                Some(e) if block.len() == e => assert_eq!(&block[..], &data[..e]),
                // The guest ended inside its header block: all of it goes to the parser.
                _ => {
                    assert!(end.is_none(), "block of {} bytes, first end at {end:?}", block.len());
                    assert_eq!(&block[..], &data[..]);
                }
            }
            match outcome {
                // Served: the body is exactly the rest.
                Outcome::Served => assert_eq!(&result.body[..], &data[block.len()..]),
                // Refused by the parser, or a redirect: no body goes out.
                _ => assert!(result.body.is_empty()),
            }
        }
        other => panic!("unexpected result {other:?}"),
    }
});
