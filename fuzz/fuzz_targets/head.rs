//! Request head parsing: never panics, agrees with httparse on every input
//! (verdict, length, method, target, fields), and a head that parses
//! complete has no prefix that is an error (a split can never change the
//! verdict).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nextloop::fuzzing::{parse_head, scan_agrees_with_httparse};

fuzz_target!(|data: &[u8]| {
    scan_agrees_with_httparse(data);
    if parse_head(data) == Ok(true) {
        for cut in 0..data.len() {
            if let Err(status) = parse_head(&data[..cut]) {
                panic!("prefix of {cut} bytes of a valid head is an error ({status})");
            }
        }
    }
});
