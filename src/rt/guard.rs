//! [`guard`]: runs user code so that a panic in it costs only what it was
//! doing, never the thread that called it (an event loop, a worker).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic becomes `Err(())`.
///
/// The panic's payload is dropped here too, under a guard of its own: a
/// payload whose `Drop` panics (`panic_any` with such a value) would
/// otherwise unwind through the caller. Should that second panic's payload
/// panic on drop as well, it is leaked rather than dropped.
///
/// Each panic is logged (`log`, level `error`) with its message: the
/// panic hook has already printed where it happened, and this says what
/// it cost.
pub(crate) fn guard<R>(f: impl FnOnce() -> R) -> Result<R, ()> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = (payload.downcast_ref::<&str>().copied())
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(not a string)");
        log::error!("a handler panicked: {message}; only its exchange is lost");
        if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            std::mem::forget(again);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::guard;

    /// Panics when dropped.
    struct Bomb;

    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("deliberate panic in a payload's drop");
        }
    }

    #[test]
    fn a_panic_becomes_err_and_the_value_passes_through() {
        assert_eq!(guard(|| 7), Ok(7));
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let plain = guard(|| panic!("deliberate"));
        let bomb = guard(|| std::panic::panic_any(Bomb));
        std::panic::set_hook(hook);
        assert_eq!(plain, Err(()));
        assert_eq!(bomb, Err(()), "the payload's panicking drop is contained");
    }
}
