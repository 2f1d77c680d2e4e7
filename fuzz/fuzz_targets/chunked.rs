//! The chunked decoder: never panics, and decoding does not depend on how
//! the input is split. The first byte picks the split points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nextloop::fuzzing::decode_chunked;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let step = usize::from(seed % 16) + 1;
    let splits: Vec<usize> = (step..input.len()).step_by(step).collect();
    assert_eq!(decode_chunked(input, &[]), decode_chunked(input, &splits));
});
