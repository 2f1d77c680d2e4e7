//! A tiny strict parser for `http://host[:port][/path][?query]` URLs (and
//! `https://` with a TLS feature).
//!
//! Only what the client needs: the scheme, the host (a name, an IPv4
//! address or a bracketed IPv6 literal), the port (80 or 443 unless
//! given), and the request
//! target. Anything else — another scheme, user info, spaces or non-ASCII
//! bytes that should have been percent-encoded — is refused with a reason
//! rather than guessed at. A `#fragment` is never sent and is dropped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A parsed URL, owned: one string holding the host (lower-cased) and the
/// request target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url {
    text: String,
    host_end: usize,
    port: u16,
    /// The host is an IP address (no name to resolve).
    ip: Option<IpAddr>,
    /// `https://`.
    https: bool,
}

impl Url {
    /// Parses `s`; the error says what is wrong with it.
    pub(crate) fn parse(s: &str) -> Result<Url, &'static str> {
        let (rest, https) = if let Some(rest) = strip_prefix_ignore_case(s, "http://") {
            (rest, false)
        } else if let Some(rest) = strip_prefix_ignore_case(s, "https://") {
            if !cfg!(feature = "__tls") {
                return Err("https:// needs nextloop's `tls` feature; use http://");
            }
            (rest, true)
        } else if s.contains("://") {
            return Err("only http:// and https:// URLs are supported");
        } else {
            return Err("missing the http:// or https:// scheme");
        };
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(auth_end);
        if authority.contains('@') {
            return Err("user info (user@host) is not supported");
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, tail) = v6.split_once(']').ok_or("unclosed [ in an IPv6 host")?;
            addr.parse::<Ipv6Addr>()
                .map_err(|_| "invalid IPv6 address in brackets")?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or("junk after the IPv6 address")?),
            };
            (&authority[..addr.len() + 2], port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("missing host");
        }
        if !host.starts_with('[')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err("invalid character in host");
        }
        let port = match port {
            None if https => 443,
            None => 80,
            Some("") => return Err("empty port after ':'"),
            Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err("port out of range (1-65535)"),
                }
            }
            Some(_) => return Err("invalid port"),
        };
        let target = after.split_once('#').map_or(after, |(t, _)| t);
        if !target.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err("invalid character in path or query (percent-encode spaces and non-ASCII)");
        }
        let mut text = String::with_capacity(host.len() + target.len() + 1);
        text.extend(host.chars().map(|c| c.to_ascii_lowercase()));
        if !target.starts_with('/') {
            text.push('/');
        }
        text.push_str(target);
        let ip = if let Some(v6) = host.strip_prefix('[') {
            v6.trim_end_matches(']').parse().ok().map(IpAddr::V6)
        } else {
            host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        };
        Ok(Url {
            text,
            host_end: host.len(),
            port,
            ip,
            https,
        })
    }

    /// Is it an `https://` URL?
    pub(crate) fn is_https(&self) -> bool {
        self.https
    }

    /// Does the port need saying in `Host` (not the scheme's default)?
    pub(crate) fn port_is_default(&self) -> bool {
        self.port == if self.https { 443 } else { 80 }
    }

    /// The host as written (lower-cased); IPv6 literals keep their brackets.
    pub(crate) fn host(&self) -> &str {
        &self.text[..self.host_end]
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `/path?query`.
    pub(crate) fn target(&self) -> &str {
        &self.text[self.host_end..]
    }

    /// The host's address when it is an IP literal.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.ip
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> Result<(String, u16, String), &'static str> {
        Url::parse(s).map(|u| (u.host().to_string(), u.port(), u.target().to_string()))
    }

    fn ok(host: &str, port: u16, target: &str) -> Result<(String, u16, String), &'static str> {
        Ok((host.to_string(), port, target.to_string()))
    }

    #[test]
    fn valid_urls() {
        let cases = [
            ("http://example.com", ok("example.com", 80, "/")),
            ("http://Example.COM/", ok("example.com", 80, "/")),
            ("HTTP://a.b:8080/x/y?q=1&r", ok("a.b", 8080, "/x/y?q=1&r")),
            ("http://127.0.0.1:3000/p", ok("127.0.0.1", 3000, "/p")),
            ("http://h?x=1", ok("h", 80, "/?x=1")),
            ("http://h/p#frag", ok("h", 80, "/p")),
            ("http://h#frag", ok("h", 80, "/")),
            ("http://[::1]:8080/a", ok("[::1]", 8080, "/a")),
            ("http://[::1]", ok("[::1]", 80, "/")),
            ("http://h/%20a", ok("h", 80, "/%20a")),
            (
                "http://my_host-1.local:65535",
                ok("my_host-1.local", 65535, "/"),
            ),
        ];
        for (url, want) in cases {
            assert_eq!(parts(url), want, "{url}");
        }
    }

    #[cfg(feature = "__tls")]
    #[test]
    fn https_urls_default_to_port_443() {
        let url = Url::parse("HTTPS://Example.com/a").unwrap();
        assert!(url.is_https() && url.port_is_default());
        assert_eq!(
            (url.host(), url.port(), url.target()),
            ("example.com", 443, "/a")
        );
        let url = Url::parse("https://h:80/").unwrap();
        assert!(url.is_https() && !url.port_is_default());
        assert!(!Url::parse("http://h/").unwrap().is_https());
    }

    #[test]
    fn invalid_urls() {
        let cases = [
            #[cfg(not(feature = "__tls"))]
            (
                "https://h/",
                "https:// needs nextloop's `tls` feature; use http://",
            ),
            ("ftp://h/", "only http:// and https:// URLs are supported"),
            ("example.com/x", "missing the http:// or https:// scheme"),
            ("http://", "missing host"),
            ("http:///x", "missing host"),
            ("http://:80/", "missing host"),
            ("http://u:p@h/", "user info (user@host) is not supported"),
            ("http://h:/", "empty port after ':'"),
            ("http://h:0/", "port out of range (1-65535)"),
            ("http://h:65536/", "port out of range (1-65535)"),
            ("http://h:80a/", "invalid port"),
            ("http://h:+80/", "invalid port"),
            ("http://h:1:2/", "invalid port"),
            ("http://h st/", "invalid character in host"),
            ("http://hé/", "invalid character in host"),
            ("http://[::1/", "unclosed [ in an IPv6 host"),
            ("http://[zz]/", "invalid IPv6 address in brackets"),
            ("http://[::1]x/", "junk after the IPv6 address"),
        ];
        for (url, want) in cases {
            assert_eq!(Url::parse(url).err(), Some(want), "{url}");
        }
        assert!(Url::parse("http://h/a b").is_err());
        assert!(Url::parse("http://h/é").is_err());
        assert!(Url::parse("http://h/\x01").is_err());
    }

    #[test]
    fn ip_literals_need_no_resolution() {
        assert_eq!(
            Url::parse("http://10.0.0.1/").unwrap().ip(),
            Some("10.0.0.1".parse().unwrap())
        );
        let v6 = Url::parse("http://[::1]:9/").unwrap();
        assert_eq!(v6.ip(), Some("::1".parse().unwrap()));
        assert_eq!(Url::parse("http://localhost/").unwrap().ip(), None);
    }
}
