//! A guest's stderr in arbitrary pieces becomes log lines with no newline in them, none
//! longer than the line limit (before lossy UTF-8 decoding), and a bounded number kept.
#![no_main]

use host::testing::fuzzing::stderr_lines;
use host::exchange::MAX_STDERR_LINE;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|chunks: Vec<Vec<u8>>| {
    let pieces: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let lines = stderr_lines(&pieces);
    for line in &lines {
        assert!(!line.contains('\n'));
        // Each invalid byte may become U+FFFD (3 bytes).
        assert!(line.len() <= 3 * MAX_STDERR_LINE || line.ends_with("lines dropped)"));
    }
    let total: usize = chunks.iter().map(Vec::len).sum();
    let newlines: usize = chunks.iter().flatten().filter(|&&b| b == b'\n').count();
    assert!(lines.len() <= newlines + total / MAX_STDERR_LINE + 2);
});
