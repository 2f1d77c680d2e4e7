//! The WebSocket frame reader: never panics, and what it makes of a
//! stream (messages, control frames, the close code of a failure) does
//! not depend on how the stream is split. The first byte picks the role,
//! the limits and the split points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nextloop::ws::{Event, Limits, Reader, Role};

#[derive(Debug, PartialEq)]
enum Seen {
    Data(bool, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Fail(u16),
}

fn run(role: Role, limits: Limits, input: &[u8], step: usize) -> Vec<Seen> {
    let mut reader = Reader::new(role, limits);
    let mut seen = Vec::new();
    let mut message: Option<(bool, Vec<u8>)> = None;
    for piece in input.chunks(step) {
        let mut piece = piece.to_vec();
        let mut at = 0;
        while at < piece.len() {
            let step = match reader.read(&mut piece[at..]) {
                Ok(s) => s,
                Err(e) => {
                    seen.push(Seen::Fail(e.close_code().0));
                    return seen;
                }
            };
            assert!(step.consumed > 0);
            at += step.consumed;
            match step.event {
                Some(Event::Data { kind, payload, first, last }) => {
                    assert_eq!(first, message.is_none());
                    let text = kind == nextloop::ws::MessageKind::Text;
                    let m = message.get_or_insert((text, Vec::new()));
                    m.1.extend_from_slice(payload);
                    if last {
                        let (text, body) = message.take().unwrap();
                        if text {
                            assert!(std::str::from_utf8(&body).is_ok());
                        }
                        seen.push(Seen::Data(text, body));
                    }
                }
                Some(Event::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
                Some(Event::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
                Some(Event::Close(c)) => seen.push(Seen::Close(c.code.map(|c| c.0), c.reason.into())),
                None => {}
            }
        }
    }
    if let Some((text, body)) = message {
        seen.push(Seen::Data(text, body));
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let role = if seed & 1 == 0 { Role::Server } else { Role::Client };
    let limits = if seed & 2 == 0 {
        Limits::default()
    } else {
        Limits { max_frame: 64, max_message: 200 }
    };
    let step = usize::from(seed >> 2) + 1;
    assert_eq!(run(role, limits, input, input.len().max(1)), run(role, limits, input, step));
});
