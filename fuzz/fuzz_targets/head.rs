//! Request head parsing: never panics, and a head that parses complete has
//! no prefix that is an error (a split can never change the verdict).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nextloop::fuzzing::parse_head;

fuzz_target!(|data: &[u8]| {
    if parse_head(data) == Ok(true) {
        for cut in 0..data.len() {
            if let Err(status) = parse_head(&data[..cut]) {
                panic!("prefix of {cut} bytes of a valid head is an error ({status})");
            }
        }
    }
});
