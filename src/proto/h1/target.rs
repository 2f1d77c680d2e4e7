//! Request targets (RFC 9112 §3.2): which of the four forms a target is
//! in, whether that form fits the method, and its path and authority.

use std::borrow::Cow;

use crate::proto::fields::{split_host, valid_host};
use crate::proto::Error;

/// Checks `target` against RFC 9112 §3.2: origin-form (`/path?query`) for
/// most requests, authority-form (`host:port`) for CONNECT and only there,
/// asterisk-form (`*`) only for OPTIONS, else absolute-form
/// (`scheme:...`, with no userinfo in its authority). A fragment (`#`) is
/// never part of a request target.
///
/// Bytes that RFC 3986 wants percent-encoded but that clients often send
/// as they are (`{ } | ^ \` and UTF-8) pass, as httparse lets them.
pub(crate) fn check(method: &str, target: &str) -> Result<(), Error> {
    let form_fits = if method == "CONNECT" {
        is_authority_form(target)
    } else if target.starts_with('/') {
        true
    } else if target == "*" {
        method == "OPTIONS"
    } else {
        split_absolute(target).is_some_and(|(authority, _)| valid_host(authority.as_bytes()))
    };
    if form_fits && !target.as_bytes().contains(&b'#') {
        Ok(())
    } else {
        Err(Error::Malformed("invalid request target"))
    }
}

/// The path of a checked target: up to `?`; after the authority for
/// absolute-form (`/` if that is empty); empty for CONNECT's
/// authority-form; `*` for asterisk-form.
pub(crate) fn path<'a>(method: &str, target: &'a str) -> &'a str {
    let up_to_query = |t: &'a str| t.split_once('?').map_or(t, |(path, _)| path);
    if target.starts_with('/') {
        return up_to_query(target);
    }
    if method == "CONNECT" {
        return "";
    }
    match split_absolute(target) {
        Some((authority, rest)) => match up_to_query(rest) {
            "" if !authority.is_empty() => "/",
            path => path,
        },
        None => up_to_query(target),
    }
}

/// The authority a checked target names itself (RFC 9112 §3.3): an
/// absolute-form target's (if not empty), or CONNECT's. `None` for
/// origin-form and asterisk-form, where the `Host` field names it.
pub(crate) fn authority<'a>(method: &str, target: &'a str) -> Option<&'a str> {
    if target.starts_with('/') {
        return None;
    }
    if method == "CONNECT" {
        return Some(target);
    }
    split_absolute(target)
        .map(|(authority, _)| authority)
        .filter(|a| !a.is_empty())
}

/// `uri-host ":" port`, neither empty.
fn is_authority_form(target: &str) -> bool {
    matches!(split_host(target.as_bytes()), Some((host, Some(port))) if !host.is_empty() && !port.is_empty())
}

/// An absolute-form target (`scheme ":" hier-part`) split into its
/// authority (empty without `//`) and the rest from the path on; `None`
/// if `target` does not start with a scheme and `:`.
fn split_absolute(target: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = target.split_once(':')?;
    let mut bytes = scheme.bytes();
    let scheme_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return None;
    }
    Some(match rest.strip_prefix("//") {
        Some(rest) => rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len())),
        None => ("", rest),
    })
}

/// The pairs of an `application/x-www-form-urlencoded` query, decoded
/// (`+` is a space, `%xx` a byte; invalid UTF-8 is replaced).
pub(crate) fn query_pairs(
    query: Option<&str>,
) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_that_fit_their_method_pass() {
        for (method, target) in [
            ("GET", "/"),
            ("GET", "/a/b?c=d&e"),
            ("GET", "/{weird}|^"),
            ("GET", "http://example.com/a?b"),
            ("GET", "http://example.com"),
            ("GET", "https://[::1]:8443/x"),
            ("GET", "urn:isbn:0451450523"),
            ("OPTIONS", "*"),
            ("OPTIONS", "/"),
            ("CONNECT", "example.com:443"),
            ("CONNECT", "[::1]:443"),
        ] {
            assert_eq!(check(method, target), Ok(()), "{method} {target}");
        }
    }

    #[test]
    fn forms_that_do_not_fit_are_400() {
        for (method, target) in [
            ("GET", "abc"),
            ("GET", "?q"),
            ("GET", "/a#frag"),
            ("GET", "http://a/b#frag"),
            ("GET", "*"),
            ("POST", "*"),
            ("GET", "1http://a/"),
            ("GET", ":nothing"),
            ("GET", "http://user@example.com/"),
            ("GET", "http://exa mple/"),
            ("CONNECT", "/"),
            ("CONNECT", "example.com"),
            ("CONNECT", "example.com:"),
            ("CONNECT", ":443"),
            ("CONNECT", "example.com:https"),
            ("CONNECT", "user@example.com:443"),
        ] {
            assert_eq!(
                check(method, target),
                Err(Error::Malformed("invalid request target")),
                "{method} {target}"
            );
        }
    }

    #[test]
    fn path_and_authority_of_each_form() {
        for (method, target, path_is, authority_is) in [
            ("GET", "/a/b?c", "/a/b", None),
            ("GET", "/", "/", None),
            (
                "GET",
                "http://example.com/a/b?c",
                "/a/b",
                Some("example.com"),
            ),
            (
                "GET",
                "http://example.com:8080?c",
                "/",
                Some("example.com:8080"),
            ),
            ("GET", "http://example.com", "/", Some("example.com")),
            ("GET", "urn:isbn:0451450523", "isbn:0451450523", None),
            ("OPTIONS", "*", "*", None),
            ("CONNECT", "example.com:443", "", Some("example.com:443")),
        ] {
            assert_eq!(path(method, target), path_is, "{method} {target}");
            assert_eq!(authority(method, target), authority_is, "{method} {target}");
        }
    }
}
