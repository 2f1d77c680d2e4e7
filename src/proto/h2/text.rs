//! Heads between HTTP/2 and the handler-facing types, for both roles: a
//! received [`Head`] as the `httparse` fields a server `Request` or a
//! client `Response` borrows, and a head written as HTTP/1 text (the one
//! way a server `Response` or a client `Request` writes one) read back as
//! the fields of a HEADERS frame.

use super::Head;

/// The regular fields of `head` into `out` (at most `out.len()`):
/// how many, or `None` when there are more.
pub(crate) fn head_fields<'a>(head: &Head<'a>, out: &mut [httparse::Header<'a>]) -> Option<usize> {
    let mut n = 0;
    for (name, value) in head.fields() {
        *out.get_mut(n)? = httparse::Header { name, value };
        n += 1;
    }
    Some(n)
}

/// The head written into `text` (a status or request line, `Name: value`
/// lines, the blank line, then any body bytes): its fields in order and
/// where the body starts. The first line is skipped (the writer knows
/// the status, or the method and target).
pub(crate) fn text_fields(text: &[u8]) -> (TextFields<'_>, usize) {
    let line_end = find_crlf(text, 0).unwrap_or(text.len());
    let mut pos = line_end + 2;
    let start = pos;
    while let Some(end) = find_crlf(text, pos) {
        if end == pos {
            let fields = TextFields {
                text: &text[start..pos],
            };
            return (fields, pos + 2);
        }
        pos = end + 2;
    }
    // (Response always ends its head with a blank line.)
    (TextFields { text: &[] }, text.len())
}

fn find_crlf(text: &[u8], from: usize) -> Option<usize> {
    text.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

/// The `Name: value` lines of a head, as `(name, value)`.
#[derive(Clone, Copy)]
pub(crate) struct TextFields<'a> {
    text: &'a [u8],
}

impl<'a> Iterator for TextFields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.text.is_empty() {
            return None;
        }
        let end = find_crlf(self.text, 0).unwrap_or(self.text.len());
        let line = &self.text[..end];
        self.text = self.text.get(end + 2..).unwrap_or(&[]);
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let value = line.get(colon + 1..).unwrap_or(&[]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        Some((&line[..colon], value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_head_reads_back_as_its_fields_and_body() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: b: c\r\n\
                     Content-Length: 2\r\n\r\nhi";
        let (fields, body) = text_fields(text);
        let got: Vec<_> = fields.collect();
        assert_eq!(
            got,
            [
                (&b"Content-Type"[..], &b"text/plain"[..]),
                (b"X-A", b"b: c"),
                (b"Content-Length", b"2")
            ]
        );
        assert_eq!(&text[body..], b"hi");
        let (fields, body) = text_fields(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(fields.count(), 0);
        assert_eq!(body, 27);
    }
}
