//! Skipping the unread rest of a body so that the connection can carry
//! the next message: the server's of a request body its handler did not
//! read, the client's of a response body. Bounded by a budget of bytes
//! read — every byte, chunk framing included, as all of it costs reading.

use super::decode::BodyDecoder;

/// Where a drain stands after [`step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Drained {
    /// The body is over; what follows it belongs to the next message.
    Done,
    /// All the input is taken: more is needed.
    More,
    /// Malformed, or longer than the budget: the connection cannot be
    /// reused.
    Failed,
}

/// Could the rest of `decoder`'s body fit in `budget`, as far as its
/// declared length tells? (A drain started anyway gives up once the
/// budget is spent.)
pub(crate) fn fits(decoder: &BodyDecoder, budget: u64) -> bool {
    decoder.remaining().is_none_or(|n| n <= budget)
}

/// Skips what it can of `input` as the rest of `decoder`'s body, taking
/// every byte read (framing included) from `budget`: the bytes taken, and
/// where the body stands.
pub(crate) fn step(decoder: &mut BodyDecoder, budget: &mut u64, input: &[u8]) -> (usize, Drained) {
    let mut taken = 0;
    loop {
        let Ok(step) = decoder.decode(&input[taken..], usize::MAX) else {
            return (taken, Drained::Failed);
        };
        taken += step.consumed;
        // Framing counts: it is read all the same.
        let n = step.consumed as u64;
        if n > *budget {
            return (taken, Drained::Failed);
        }
        *budget -= n;
        if decoder.is_done() {
            return (taken, Drained::Done);
        }
        if step.consumed == 0 {
            return (taken, Drained::More);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drains `input` as the rest of `decoder`'s body within `budget`.
    fn drain(mut decoder: BodyDecoder, mut budget: u64, inputs: &[&[u8]]) -> Vec<(usize, Drained)> {
        inputs
            .iter()
            .map(|input| step(&mut decoder, &mut budget, input))
            .collect()
    }

    #[test]
    fn framing_counts_against_the_budget() {
        // 3 body bytes in 18 bytes of chunked body.
        let body = b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n";
        let len = body.len() as u64;
        let fits = drain(BodyDecoder::chunked(64), len, &[body]);
        assert_eq!(fits, [(body.len(), Drained::Done)]);
        let over = drain(BodyDecoder::chunked(64), len - 1, &[body]);
        assert_eq!(over[0].1, Drained::Failed);
    }

    #[test]
    fn a_body_in_pieces_asks_for_more_and_leaves_what_follows() {
        let steps = drain(BodyDecoder::length(5), 5, &[b"he", b"", b"lloGET /"]);
        assert_eq!(
            steps,
            [(2, Drained::More), (0, Drained::More), (3, Drained::Done)]
        );
    }

    #[test]
    fn a_declared_length_over_the_budget_does_not_fit() {
        assert!(!fits(&BodyDecoder::length(6), 5));
        assert!(fits(&BodyDecoder::length(5), 5));
        assert!(fits(&BodyDecoder::chunked(64), 0));
        let steps = drain(BodyDecoder::length(6), 5, &[b"abcdef"]);
        assert_eq!(steps, [(6, Drained::Failed)]);
    }

    #[test]
    fn malformed_framing_fails() {
        let steps = drain(BodyDecoder::chunked(64), 100, &[b"zz\r\n"]);
        assert_eq!(steps[0].1, Drained::Failed);
    }
}
