//! Skipping the unread rest of a body so that the connection can carry
//! the next message: the server's of a request body its handler did not
//! read, the client's of a response body. Bounded by a budget of bytes
//! read — every byte, chunk framing included, as all of it costs reading.

use super::decode::BodyDecoder;

/// A body being skipped, and what is left of its budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Drain {
    decoder: BodyDecoder,
    budget: u64,
}

/// Where a [`Drain`] stands after [`Drain::step`].
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

impl Drain {
    /// Skipping the rest of `decoder`'s body, reading at most `budget`
    /// bytes.
    pub(crate) fn new(decoder: BodyDecoder, budget: u64) -> Drain {
        Drain { decoder, budget }
    }

    /// Could the rest of `decoder`'s body fit in `budget`, as far as its
    /// declared length tells? (A drain started anyway gives up once the
    /// budget is spent.)
    pub(crate) fn fits(decoder: &BodyDecoder, budget: u64) -> bool {
        decoder.remaining().is_none_or(|n| n <= budget)
    }

    /// Takes what it can of `input`: the bytes taken, and where the body
    /// stands.
    pub(crate) fn step(&mut self, input: &[u8]) -> (usize, Drained) {
        let mut taken = 0;
        loop {
            let Ok(step) = self.decoder.decode(&input[taken..], usize::MAX) else {
                return (taken, Drained::Failed);
            };
            taken += step.consumed;
            // Framing counts: it is read all the same.
            let n = step.consumed as u64;
            if n > self.budget {
                return (taken, Drained::Failed);
            }
            self.budget -= n;
            if self.decoder.is_done() {
                return (taken, Drained::Done);
            }
            if step.consumed == 0 {
                return (taken, Drained::More);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_counts_against_the_budget() {
        // 3 body bytes in 18 bytes of chunked body.
        let body = b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n";
        let mut drain = Drain::new(BodyDecoder::chunked(64), body.len() as u64);
        assert_eq!(drain.step(body), (body.len(), Drained::Done));
        let mut drain = Drain::new(BodyDecoder::chunked(64), body.len() as u64 - 1);
        assert_eq!(drain.step(body).1, Drained::Failed);
    }

    #[test]
    fn a_body_in_pieces_asks_for_more_and_leaves_what_follows() {
        let mut drain = Drain::new(BodyDecoder::length(5), 5);
        assert_eq!(drain.step(b"he"), (2, Drained::More));
        assert_eq!(drain.step(b""), (0, Drained::More));
        assert_eq!(drain.step(b"lloGET /"), (3, Drained::Done));
    }

    #[test]
    fn a_declared_length_over_the_budget_does_not_fit() {
        assert!(!Drain::fits(&BodyDecoder::length(6), 5));
        assert!(Drain::fits(&BodyDecoder::length(5), 5));
        assert!(Drain::fits(&BodyDecoder::chunked(64), 0));
        let mut drain = Drain::new(BodyDecoder::length(6), 5);
        assert_eq!(drain.step(b"abcdef"), (6, Drained::Failed));
    }

    #[test]
    fn malformed_framing_fails() {
        let mut drain = Drain::new(BodyDecoder::chunked(64), 100);
        assert_eq!(drain.step(b"zz\r\n").1, Drained::Failed);
    }
}
