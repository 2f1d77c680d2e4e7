//! The whole connection machine fed arbitrary bytes split arbitrarily:
//! never panics, and writes exactly the same bytes whole or split. The
//! first byte picks the split points, the second whether the peer closes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nextloop::fuzzing::{Driver, Summary};

fn run(input: &[u8], splits: &[usize], close: bool) -> Vec<u8> {
    let mut driver = Driver::new(Summary::factory());
    let mut fed = 0;
    for &end in splits.iter().chain([&input.len()]) {
        driver.feed(&input[fed..end]);
        fed = end;
    }
    if close {
        driver.close_input();
    }
    driver.output
}

fuzz_target!(|data: &[u8]| {
    let [seed, flags, input @ ..] = data else {
        return;
    };
    let step = usize::from(seed % 32) + 1;
    let splits: Vec<usize> = (step..input.len()).step_by(step).collect();
    let close = flags & 1 == 1;
    let whole = run(input, &[], close);
    let split = run(input, &splits, close);
    assert!(whole == split, "output depends on the splits");
});
