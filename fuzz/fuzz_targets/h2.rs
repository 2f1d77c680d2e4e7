//! cargo fuzz run h2
//!
//! The HTTP/2 engine (frame reader, stream rules, HPACK decoder) over
//! any client bytes after the preface: never panics, and reads the same
//! whole or cut into pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nextloop::fuzzing::h2_split_invariant(data);
});
