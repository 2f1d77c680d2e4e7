//! Each request parks its handler with `Next::wait()`; another thread
//! calls `Control::ready` after a short delay, and the handler answers 200.
//!
//!     cargo run --release --example control -- 127.0.0.1:3000 [delay-ms]

use std::time::Duration;

use nextloop::server::{Handler, Request, Response, Server};
use nextloop::{Control, Next};

struct Delayed {
    control: Control,
    delay: Duration,
}

impl Handler for Delayed {
    fn on_request(&mut self, _req: Request<'_>) -> Next {
        let control = self.control.clone();
        let delay = self.delay;
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            // Gone only if the client went away meanwhile.
            let _ = control.ready(Next::write());
        });
        // Park; give up after 30 s if the wake-up never comes.
        Next::wait().timeout(Duration::from_secs(30))
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        let text = format!("woken after {} ms\n", self.delay.as_millis());
        res.header("Content-Type", "text/plain")
            .body(text.as_bytes());
        Next::end()
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let delay = Duration::from_millis(args.next().and_then(|s| s.parse().ok()).unwrap_or(100));
    let server = Server::bind(addr)?
        .shutdown_on_signals()
        .handle(move |control| Delayed { control, delay })?;
    println!("Listening on http://{}", server.addr());
    server.join()
}
