//! HPACK decoding: never panics, and every block that decodes, encoded
//! again by our encoder, decodes to the same fields (see
//! `nextloop::fuzzing::hpack_round_trip` for the input's layout).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nextloop::fuzzing::hpack_round_trip;

fuzz_target!(|data: &[u8]| {
    hpack_round_trip(data);
});
