//! The Rust HTTP ecosystem's vocabulary: decoded query pairs, and with
//! the `http` feature the `http` crate's types where ours are taken and
//! heads converted to its `Parts`. Over real TCP on 127.0.0.1; waits are
//! bounded.

mod common;

use common::{client, get, serve};
use nextloop::server::{Handler, Request, Response};
use nextloop::Next;

/// Answers with the decoded query pairs, one `name=value` per line.
struct Pairs {
    text: String,
}

impl Handler for Pairs {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        for (name, value) in req.query_pairs() {
            self.text.push_str(&format!("{name}={value}\n"));
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(self.text.as_bytes());
        Next::end()
    }
}

#[test]
fn query_pairs_are_decoded() {
    let server = serve(|_| Pairs {
        text: String::new(),
    });
    let mut c = client(server.addr());
    c.send(get(
        "/search?q=caf%C3%A9+au+lait&page=2&empty=&flag&a%26b=c%3Dd",
    ));
    let res = c.response();
    assert_eq!(
        res.body_str(),
        "q=café au lait\npage=2\nempty=\nflag=\na&b=c=d\n"
    );
    c.send(get("/no-query"));
    assert_eq!(c.response().body_str(), "");
}

#[cfg(feature = "http")]
mod http_types {
    use std::sync::{Arc, Mutex};

    use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
    use http::{Method, StatusCode};
    use nextloop::hypersync;

    use super::*;

    /// Keeps the request's `http::request::Parts`; answers 201 with
    /// `http` names and values.
    struct Typed {
        seen: Arc<Mutex<Option<http::request::Parts>>>,
    }

    impl Handler for Typed {
        fn on_request(&mut self, req: Request<'_>) -> Next {
            *self.seen.lock().unwrap() = Some(req.to_http().expect("converts"));
            Next::write()
        }

        fn on_response(&mut self, res: &mut Response<'_>) -> Next {
            res.set_status(StatusCode::CREATED)
                .header(CONTENT_TYPE, HeaderValue::from_static("text/plain"))
                .header(HeaderName::from_static("x-typed"), "yes")
                .body(b"made");
            Next::end()
        }
    }

    #[test]
    fn http_types_in_and_out_of_the_server_and_the_blocking_client() {
        let seen = Arc::default();
        let server = serve({
            let seen = Arc::clone(&seen);
            move |_| Typed {
                seen: Arc::clone(&seen),
            }
        });
        let res = hypersync::Client::new()
            .request(
                Method::PUT,
                &format!("http://{}/things/1?x=1", server.addr()),
            )
            .header(
                HeaderName::from_static("x-from"),
                HeaderValue::from_static("client"),
            )
            .body("thing")
            .send()
            .unwrap();
        assert_eq!(res.status(), 201);

        let parts = res.to_http().unwrap();
        assert_eq!(parts.status, StatusCode::CREATED);
        assert_eq!(parts.version, http::Version::HTTP_11);
        assert_eq!(parts.headers[CONTENT_TYPE], "text/plain");
        assert_eq!(parts.headers["x-typed"], "yes");
        assert_eq!(parts.headers[http::header::CONTENT_LENGTH], "4");

        let req = seen
            .lock()
            .unwrap()
            .take()
            .expect("the handler saw the request");
        assert_eq!(req.method, Method::PUT);
        assert_eq!(req.uri.path(), "/things/1");
        assert_eq!(req.uri.query(), Some("x=1"));
        assert_eq!(req.version, http::Version::HTTP_11);
        assert_eq!(req.headers["x-from"], "client");
        assert_eq!(req.headers[http::header::CONTENT_LENGTH], "5");
        assert!(req.headers.contains_key(http::header::HOST));
    }
}
