//! Decoded header blocks: the loop-shared [`Scratch`] they are decoded
//! into, the [`Head`] view the owner reads, and the field rules of
//! RFC 9113 §8.2–8.3 checked field by field as HPACK hands them over.

use super::settings::Settings;
use crate::proto::fields;

/// What a header block is, by its place on the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKind {
    /// A request's head (server role).
    Request,
    /// A final response's head (client role).
    Response,
    /// A 1xx response's head (client role); a final one follows.
    Informational,
    /// Trailers: fields after the body, no pseudo-headers.
    Trailers,
}

/// Buffers shared by every connection of a loop (sized once from the
/// [`Settings`], never grown): header blocks are decoded into them and
/// the [`Head`] of an event borrows them until the next `recv`.
///
/// For the default settings it holds about 72 KiB; one per loop, not per
/// connection, since a head lives only while its event is handled.
pub struct Scratch {
    /// Huffman-decoded strings and wrapped table entries: one field's
    /// worth (the decoder's per-field bound).
    hpack: Box<[u8]>,
    /// A header block split over CONTINUATION frames, joined.
    block: Vec<u8>,
    /// The decoded names and values, back to back (and a joined cookie).
    bytes: Vec<u8>,
    /// Where each field is in `bytes`.
    index: Vec<Field>,
    /// The pseudo-headers, as ranges of `bytes`.
    pseudo: Pseudo,
    /// The head's content-length, if any.
    content_length: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Field {
    at: u32,
    name: u32,
    value: u32,
    /// A cookie crumb folded into a joined field: skipped.
    hidden: bool,
    sensitive: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct Pseudo {
    method: Option<(u32, u32)>,
    scheme: Option<(u32, u32)>,
    authority: Option<(u32, u32)>,
    path: Option<(u32, u32)>,
    protocol: Option<(u32, u32)>,
    status: Option<u16>,
}

impl Scratch {
    /// Buffers for connections with `settings` (their header list size).
    pub fn new(settings: &Settings) -> Scratch {
        let list = settings.clone().clamped().max_header_list_size as usize;
        Scratch {
            hpack: vec![0; list].into_boxed_slice(),
            block: Vec::with_capacity(list),
            // The fields within the list budget, and one joined cookie.
            bytes: Vec::with_capacity(2 * list),
            index: Vec::with_capacity(list / 32 + 2),
            pseudo: Pseudo::default(),
            content_length: None,
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.hpack.len()
            + self.block.capacity()
            + self.bytes.capacity()
            + self.index.capacity() * std::mem::size_of::<Field>()
    }

    /// The list budget these buffers were sized for.
    pub(crate) fn list_capacity(&self) -> usize {
        self.hpack.len()
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.index.clear();
        self.pseudo = Pseudo::default();
        self.content_length = None;
    }

    /// The join buffer, to fill with a block split over CONTINUATIONs.
    pub(crate) fn block_and_hpack(&mut self) -> (&mut Vec<u8>, &mut [u8]) {
        (&mut self.block, &mut self.hpack)
    }

    /// The joined block, the HPACK scratch, and a field collector over
    /// the rest (cleared for a new head).
    pub(crate) fn decode_parts(&mut self) -> (&[u8], &mut [u8], Collector<'_>) {
        self.bytes.clear();
        self.index.clear();
        self.pseudo = Pseudo::default();
        self.content_length = None;
        (
            &self.block,
            &mut self.hpack,
            Collector {
                bytes: &mut self.bytes,
                index: &mut self.index,
                pseudo: &mut self.pseudo,
                content_length: &mut self.content_length,
                regular_seen: false,
                malformed: None,
                cookies: 0,
                te_seen: false,
            },
        )
    }

    /// The head last decoded.
    pub(crate) fn head(&self, kind: HeadKind) -> Head<'_> {
        Head { s: self, kind }
    }
}

/// Collects fields from the HPACK decoder, checking each against the
/// rules of §8.2 as it comes; what breaks one is kept as the reason the
/// head is malformed (decoding goes on: the HPACK state must).
pub(crate) struct Collector<'a> {
    bytes: &'a mut Vec<u8>,
    index: &'a mut Vec<Field>,
    pseudo: &'a mut Pseudo,
    content_length: &'a mut Option<u64>,
    regular_seen: bool,
    /// The first rule broken.
    pub(crate) malformed: Option<&'static str>,
    cookies: u32,
    te_seen: bool,
}

/// Connection-specific fields (§8.2.2).
fn connection_specific(name: &[u8]) -> bool {
    matches!(
        name,
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade"
    )
}

/// A lowercase token: what a field name must be in HTTP/2 (§8.2.1).
fn lowercase_token(name: &[u8]) -> bool {
    fields::is_token(name) && !name.iter().any(u8::is_ascii_uppercase)
}

/// A value without NUL, CR, LF (or other controls but HTAB), and without
/// whitespace at either end (§8.2.1).
fn good_value(value: &[u8]) -> bool {
    fields::is_field_value(value)
        && !matches!(value.first(), Some(b' ' | b'\t'))
        && !matches!(value.last(), Some(b' ' | b'\t'))
}

impl Collector<'_> {
    fn fail(&mut self, why: &'static str) {
        self.malformed.get_or_insert(why);
    }

    fn push(&mut self, name: &[u8], value: &[u8]) -> (u32, u32) {
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        (at, at + name.len() as u32)
    }

    /// One field of a head of `kind`. `connect_protocol`: `:protocol`
    /// is allowed (RFC 8441).
    pub(crate) fn field(
        &mut self,
        kind: HeadKind,
        name: &[u8],
        value: &[u8],
        sensitive: bool,
        connect_protocol: bool,
    ) {
        if self.malformed.is_some() {
            return;
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.regular_seen {
                return self.fail("pseudo-header after a regular field");
            }
            let (_, v) = self.push(b"", value);
            let range = Some((v, v + value.len() as u32));
            let slot = match (kind, pseudo) {
                (HeadKind::Request, b"method") => &mut self.pseudo.method,
                (HeadKind::Request, b"scheme") => &mut self.pseudo.scheme,
                (HeadKind::Request, b"authority") => &mut self.pseudo.authority,
                (HeadKind::Request, b"path") => &mut self.pseudo.path,
                (HeadKind::Request, b"protocol") if connect_protocol => &mut self.pseudo.protocol,
                (HeadKind::Response | HeadKind::Informational, b"status") => {
                    if self.pseudo.status.is_some() {
                        return self.fail("repeated :status");
                    }
                    match value {
                        [a @ b'1'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9'] => {
                            self.pseudo.status = Some(
                                u16::from(a - b'0') * 100
                                    + u16::from(b - b'0') * 10
                                    + u16::from(c - b'0'),
                            );
                        }
                        _ => self.fail("bad :status"),
                    }
                    return;
                }
                (HeadKind::Trailers, _) => return self.fail("pseudo-header in trailers"),
                _ => return self.fail("unknown pseudo-header"),
            };
            if slot.is_some() {
                return self.fail("repeated pseudo-header");
            }
            if !good_value(value) {
                return self.fail("bad pseudo-header value");
            }
            *slot = range;
            return;
        }
        self.regular_seen = true;
        if !lowercase_token(name) {
            return self.fail("field name not a lowercase token");
        }
        if !good_value(value) {
            return self.fail("bad field value");
        }
        if connection_specific(name) {
            return self.fail("connection-specific field");
        }
        match name {
            b"te" => {
                if value != b"trailers" || self.te_seen {
                    return self.fail("TE other than trailers");
                }
                self.te_seen = true;
            }
            b"content-length" if fields::merge_length(self.content_length, value).is_err() => {
                return self.fail("bad content-length");
            }
            b"cookie" => self.cookies += 1,
            _ => {}
        }
        let (at, v) = self.push(name, value);
        self.index.push(Field {
            at,
            name: v - at,
            value: value.len() as u32,
            hidden: false,
            sensitive,
        });
    }

    /// After the last field: the rules on the head as a whole (§8.3),
    /// and cookie crumbs joined into one field (§8.2.3).
    pub(crate) fn finish(&mut self, kind: HeadKind, end_stream: bool) -> Option<&'static str> {
        if self.malformed.is_some() {
            return self.malformed;
        }
        let p = *self.pseudo;
        let get = |r: Option<(u32, u32)>| r.map(|(a, b)| &self.bytes[a as usize..b as usize]);
        match kind {
            HeadKind::Request => {
                let Some(method) = get(p.method) else {
                    return Some("no :method");
                };
                if !fields::is_token(method) {
                    return Some("bad :method");
                }
                let connect = method == b"CONNECT";
                if let Some(authority) = get(p.authority) {
                    if !fields::valid_host(authority) {
                        return Some("bad :authority");
                    }
                }
                if connect && p.protocol.is_none() {
                    if p.authority.is_none() {
                        return Some("CONNECT without :authority");
                    }
                    if p.scheme.is_some() || p.path.is_some() {
                        return Some("CONNECT with :scheme or :path");
                    }
                } else {
                    if p.protocol.is_some() && !connect {
                        return Some(":protocol without CONNECT");
                    }
                    let (Some(scheme), Some(path)) = (get(p.scheme), get(p.path)) else {
                        return Some("no :scheme or :path");
                    };
                    if !is_scheme(scheme) {
                        return Some("bad :scheme");
                    }
                    match path {
                        [] => return Some("empty :path"),
                        b"*" if method == b"OPTIONS" => {}
                        [b'/', ..] => {}
                        _ if scheme != b"http" && scheme != b"https" => {}
                        _ => return Some("bad :path"),
                    }
                }
            }
            HeadKind::Response | HeadKind::Informational => match p.status {
                None => return Some("no :status"),
                Some(s) if s < 200 && end_stream => return Some("1xx with END_STREAM"),
                Some(_) => {}
            },
            HeadKind::Trailers => {
                if !end_stream {
                    return Some("trailers without END_STREAM");
                }
            }
        }
        if self.cookies > 1 {
            self.join_cookies();
        }
        None
    }

    fn join_cookies(&mut self) {
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(b"cookie");
        let mut first = true;
        for i in 0..self.index.len() {
            let f = self.index[i];
            let (n, v) = (f.at as usize, (f.at + f.name) as usize);
            if &self.bytes[n..v] != b"cookie" {
                continue;
            }
            if !first {
                self.bytes.extend_from_slice(b"; ");
            }
            first = false;
            self.bytes.extend_from_within(v..v + f.value as usize);
            self.index[i].hidden = true;
        }
        let value = self.bytes.len() as u32 - at - 6;
        self.index.push(Field {
            at,
            name: 6,
            value,
            hidden: false,
            sensitive: true,
        });
    }

    /// The head's 1xx-or-final status, for a response.
    pub(crate) fn status(&self) -> Option<u16> {
        self.pseudo.status
    }

    /// The content-length declared.
    pub(crate) fn content_length(&self) -> Option<u64> {
        *self.content_length
    }
}

/// `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_scheme(s: &[u8]) -> bool {
    matches!(s.first(), Some(b) if b.is_ascii_alphabetic())
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// A decoded, validated header block, borrowed from the loop's
/// [`Scratch`] until the next `recv`.
#[derive(Clone, Copy)]
pub struct Head<'a> {
    s: &'a Scratch,
    kind: HeadKind,
}

impl<'a> Head<'a> {
    fn get(&self, r: Option<(u32, u32)>) -> Option<&'a [u8]> {
        r.map(|(a, b)| &self.s.bytes[a as usize..b as usize])
    }

    /// What the block is.
    pub fn kind(&self) -> HeadKind {
        self.kind
    }

    /// `:method` (requests).
    pub fn method(&self) -> Option<&'a [u8]> {
        self.get(self.s.pseudo.method)
    }

    /// `:scheme` (requests; absent for CONNECT).
    pub fn scheme(&self) -> Option<&'a [u8]> {
        self.get(self.s.pseudo.scheme)
    }

    /// `:authority` (requests), if sent.
    pub fn authority(&self) -> Option<&'a [u8]> {
        self.get(self.s.pseudo.authority)
    }

    /// `:path` (requests; absent for CONNECT).
    pub fn path(&self) -> Option<&'a [u8]> {
        self.get(self.s.pseudo.path)
    }

    /// `:protocol` (extended CONNECT, RFC 8441).
    pub fn protocol(&self) -> Option<&'a [u8]> {
        self.get(self.s.pseudo.protocol)
    }

    /// `:status` (responses).
    pub fn status(&self) -> Option<u16> {
        self.s.pseudo.status
    }

    /// The `content-length`, if declared (repeats agree: checked).
    pub fn content_length(&self) -> Option<u64> {
        self.s.content_length
    }

    /// The regular fields in order, as `(name, value)`; names are
    /// lowercase tokens. Several `cookie` fields come as one, joined with
    /// `"; "` (§8.2.3), after the others.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let s = self.s;
        s.index.iter().filter(|f| !f.hidden).map(move |f| {
            let (a, n) = (f.at as usize, (f.at + f.name) as usize);
            // Names were checked to be tokens: ASCII.
            let name = std::str::from_utf8(&s.bytes[a..n]).unwrap_or("");
            (name, &s.bytes[n..n + f.value as usize])
        })
    }

    /// The regular fields with whether each came never-indexed.
    pub fn fields_sensitive(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8], bool)> + 'a {
        let s = self.s;
        s.index.iter().filter(|f| !f.hidden).map(move |f| {
            let (a, n) = (f.at as usize, (f.at + f.name) as usize);
            (
                &s.bytes[a..n],
                &s.bytes[n..n + f.value as usize],
                f.sensitive,
            )
        })
    }

    /// The first field named `name` (lowercase).
    pub fn field(&self, name: &str) -> Option<&'a [u8]> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl std::fmt::Debug for Head<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn text(b: Option<&[u8]>) -> Option<std::borrow::Cow<'_, str>> {
            b.map(String::from_utf8_lossy)
        }
        f.debug_struct("Head")
            .field("kind", &self.kind)
            .field("method", &text(self.method()))
            .field("path", &text(self.path()))
            .field("status", &self.status())
            .field(
                "fields",
                &self
                    .fields()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v)))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}
