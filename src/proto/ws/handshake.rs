//! The opening handshake (RFC 6455 §4), over header fields as `(name,
//! value)` pairs: the server's checks of an upgrade request, the
//! `Sec-WebSocket-Accept` value, subprotocol selection, and the client's
//! key and its check of the answer. The public face, over a server's
//! `Request` and `Response`, is in `crate::ws`.

use super::{base64, sha1};

/// The GUID RFC 6455 §1.3 appends to the key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64 of
/// the SHA-1 of the key and the GUID.
pub(crate) fn accept_value(key: &[u8]) -> [u8; 28] {
    let digest = sha1::digest(&[key, GUID]);
    let mut out = [0; 28];
    base64::encode(&digest, &mut out);
    out
}

/// Why an upgrade request is refused, and how to answer it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a WebSocket request (no `Upgrade: websocket`): plain HTTP. A
    /// WebSocket-only endpoint answers `426 Upgrade Required` with
    /// `Upgrade: websocket`.
    NotWebSocket,
    /// A `Sec-WebSocket-Version` other than 13: `426` with
    /// `Sec-WebSocket-Version: 13` (RFC 6455 §4.2.2).
    Version,
    /// A WebSocket request that breaks RFC 6455 §4.2.1 (not GET, not
    /// HTTP/1.1, no `Connection: upgrade`, a key that is not 16 bytes
    /// of base64, no version): `400`, with what is wrong.
    Malformed(&'static str),
}

impl Refusal {
    /// The status to answer with: 426 or 400.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotWebSocket | Refusal::Version => 426,
            Refusal::Malformed(_) => 400,
        }
    }

    /// What is wrong, in a few words.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotWebSocket => "WebSocket upgrade required",
            Refusal::Version => "WebSocket version 13 required",
            Refusal::Malformed(what) => what,
        }
    }
}

/// Does a comma-separated field list (over all fields named `name`)
/// contain `token`, ASCII case-insensitive?
pub(crate) fn has_token<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    name: &str,
    token: &str,
) -> bool {
    list(fields, name).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// The elements of a comma-separated list over every field named
/// `name`, trimmed of whitespace, empty ones left out.
pub(crate) fn list<'a, 'n>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])> + 'n,
    name: &'n str,
) -> impl Iterator<Item = &'a [u8]> + 'n
where
    'a: 'n,
{
    fields
        .into_iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// The only field named `name`, trimmed; `Err` if there are several.
fn single<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    name: &str,
) -> Result<Option<&'a [u8]>, ()> {
    let mut found = None;
    for (n, v) in fields {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(());
            }
            found = Some(v.trim_ascii());
        }
    }
    Ok(found)
}

/// Checks a server-side upgrade request; its `Sec-WebSocket-Accept` value.
///
/// `fields` gives the request's fields afresh at each call.
pub(crate) fn check_request<'a, I>(
    method: &str,
    http11: bool,
    fields: impl Fn() -> I,
) -> Result<[u8; 28], Refusal>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    if !has_token(fields(), "upgrade", "websocket") {
        return Err(Refusal::NotWebSocket);
    }
    if method != "GET" {
        return Err(Refusal::Malformed("WebSocket upgrade must be GET"));
    }
    if !http11 {
        return Err(Refusal::Malformed("WebSocket upgrade needs HTTP/1.1"));
    }
    if !has_token(fields(), "connection", "upgrade") {
        return Err(Refusal::Malformed("no Connection: upgrade"));
    }
    match single(fields(), "sec-websocket-version") {
        Ok(Some(b"13")) => {}
        Ok(Some(_)) => return Err(Refusal::Version),
        Ok(None) => return Err(Refusal::Malformed("no Sec-WebSocket-Version")),
        Err(()) => return Err(Refusal::Malformed("several Sec-WebSocket-Version")),
    }
    match single(fields(), "sec-websocket-key") {
        Ok(Some(key)) if base64::decode16(key).is_some() => Ok(accept_value(key)),
        Ok(Some(_)) => Err(Refusal::Malformed(
            "Sec-WebSocket-Key is not 16 bytes of base64",
        )),
        Ok(None) => Err(Refusal::Malformed("no Sec-WebSocket-Key")),
        Err(()) => Err(Refusal::Malformed("several Sec-WebSocket-Key")),
    }
}

/// The subprotocol to answer with: the first the client offers (its
/// order is its preference, RFC 6455 §4.1) that is in `supported`
/// (ASCII case-sensitive: subprotocol names are tokens compared
/// exactly).
pub(crate) fn select_protocol<'a, 's>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    supported: &[&'s str],
) -> Option<&'s str> {
    list(fields, "sec-websocket-protocol")
        .find_map(|offered| supported.iter().find(|s| s.as_bytes() == offered))
        .copied()
}

/// A client's `Sec-WebSocket-Key`: 16 random bytes in base64.
pub(crate) fn client_key() -> [u8; 24] {
    let a = super::writer::random_u64();
    let b = super::writer::random_u64();
    let mut raw = [0; 16];
    raw[..8].copy_from_slice(&a.to_ne_bytes());
    raw[8..].copy_from_slice(&b.to_ne_bytes());
    let mut key = [0; 24];
    base64::encode(&raw, &mut key);
    key
}

/// Checks a server's answer to a client's upgrade request with `key`,
/// which offered `offered` subprotocols; the subprotocol the server
/// chose, if any.
pub(crate) fn check_response<'a, I>(
    status: u16,
    fields: impl Fn() -> I,
    key: &[u8],
    offered: &[&str],
) -> Result<Option<&'a str>, &'static str>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    if status != 101 {
        return Err("the server did not switch protocols");
    }
    if !has_token(fields(), "upgrade", "websocket") {
        return Err("no Upgrade: websocket in the answer");
    }
    if !has_token(fields(), "connection", "upgrade") {
        return Err("no Connection: upgrade in the answer");
    }
    match single(fields(), "sec-websocket-accept") {
        Ok(Some(accept)) if accept == accept_value(key) => {}
        Ok(Some(_)) => return Err("wrong Sec-WebSocket-Accept"),
        _ => return Err("no single Sec-WebSocket-Accept"),
    }
    // We offer no extension, so the server may name none (§4.1).
    if list(fields(), "sec-websocket-extensions").next().is_some() {
        return Err("the server chose an extension that was not offered");
    }
    match single(fields(), "sec-websocket-protocol") {
        Ok(None) => Ok(None),
        Ok(Some(p)) => match std::str::from_utf8(p) {
            Ok(p) if offered.contains(&p) => Ok(Some(p)),
            _ => Err("the server chose a subprotocol that was not offered"),
        },
        Err(()) => Err("several Sec-WebSocket-Protocol in the answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
        pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
    }

    const GOOD: &[(&str, &str)] = &[
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("Sec-WebSocket-Version", "13"),
    ];

    #[test]
    fn rfc_6455_section_1_3_accept_value() {
        assert_eq!(
            &accept_value(b"dGhlIHNhbXBsZSBub25jZQ=="),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            check_request("GET", true, || fields(GOOD)).unwrap(),
            *b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn tokens_are_found_in_lists_case_insensitively() {
        let f = fields(&[
            ("Upgrade", "WebSocket"),
            ("connection", "keep-alive,  UPGRADE "),
            ("Sec-WebSocket-Key", " dGhlIHNhbXBsZSBub25jZQ== "),
            ("Sec-WebSocket-Version", "13"),
        ]);
        assert!(check_request("GET", true, || f.clone()).is_ok());
    }

    #[test]
    fn every_refusal_has_its_status() {
        let with = |name: &str, value: Option<&'static str>| -> Vec<(&'static str, &'static str)> {
            let mut v: Vec<_> = GOOD
                .iter()
                .copied()
                .filter(|(n, _)| !n.eq_ignore_ascii_case(name))
                .collect();
            if let Some(value) = value {
                let name: &'static str = GOOD
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .unwrap()
                    .0;
                v.push((name, value));
            }
            v
        };
        type Case<'a> = (&'a str, bool, Vec<(&'a str, &'a str)>, u16);
        let cases: Vec<Case> = vec![
            ("GET", true, with("Upgrade", None), 426),
            ("GET", true, with("Upgrade", Some("h2c")), 426),
            ("POST", true, GOOD.to_vec(), 400),
            ("GET", false, GOOD.to_vec(), 400),
            ("GET", true, with("Connection", None), 400),
            ("GET", true, with("Connection", Some("keep-alive")), 400),
            ("GET", true, with("Sec-WebSocket-Version", Some("8")), 426),
            (
                "GET",
                true,
                with("Sec-WebSocket-Version", Some("13, 8")),
                426,
            ),
            ("GET", true, with("Sec-WebSocket-Version", None), 400),
            ("GET", true, with("Sec-WebSocket-Key", None), 400),
            (
                "GET",
                true,
                with("Sec-WebSocket-Key", Some("dGhlIHNhbXBsZSBub25j")),
                400,
            ),
            (
                "GET",
                true,
                with("Sec-WebSocket-Key", Some("not base64 at all!!!!!==")),
                400,
            ),
        ];
        for (method, http11, f, status) in cases {
            let got = check_request(method, http11, || fields(&f)).unwrap_err();
            assert_eq!(got.status(), status, "{method} {http11} {f:?}: {got:?}");
        }
        let mut twice = GOOD.to_vec();
        twice.push(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(
            check_request("GET", true, || fields(&twice))
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn subprotocol_is_the_clients_first_choice_that_we_support() {
        let f = fields(GOOD);
        assert_eq!(
            select_protocol(f.clone(), &["superchat", "chat"]),
            Some("chat")
        );
        assert_eq!(
            select_protocol(f.clone(), &["superchat"]),
            Some("superchat")
        );
        assert_eq!(select_protocol(f.clone(), &["Chat"]), None);
        assert_eq!(select_protocol(f, &[]), None);
    }

    #[test]
    fn client_keys_are_fresh_and_answers_are_checked() {
        let key = client_key();
        assert!(base64::decode16(&key).is_some());
        assert_ne!(key, client_key());
        let accept = accept_value(&key);
        let accept = std::str::from_utf8(&accept).unwrap();
        let ok = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept),
        ];
        assert_eq!(check_response(101, || fields(&ok), &key, &[]), Ok(None));
        assert!(check_response(200, || fields(&ok), &key, &[]).is_err());
        assert!(check_response(101, || fields(&ok[..2]), &key, &[]).is_err());
        assert!(check_response(101, || fields(&ok), b"dGhlIHNhbXBsZSBub25jZQ==", &[]).is_err());
        let mut chose = ok.to_vec();
        chose.push(("Sec-WebSocket-Protocol", "chat"));
        assert_eq!(
            check_response(101, || fields(&chose), &key, &["chat"]),
            Ok(Some("chat"))
        );
        assert!(check_response(101, || fields(&chose), &key, &["other"]).is_err());
        let mut ext = ok.to_vec();
        ext.push(("Sec-WebSocket-Extensions", "permessage-deflate"));
        assert!(check_response(101, || fields(&ext), &key, &[]).is_err());
    }
}
