//! The vocabulary of the `http` crate where ours is taken.
//!
//! Without any feature, names and values are taken as `impl AsRef<str>` /
//! `impl AsRef<[u8]>` (so `http::HeaderName`, `HeaderValue` and `Method`
//! fit as they are) and statuses as [`IntoStatus`]. With the `http`
//! feature, `http::StatusCode` is an [`IntoStatus`] too, and heads convert
//! to `http::request::Parts` / `http::response::Parts`:
//! [`server::Request::to_http`](crate::server::Request::to_http),
//! [`hypersync::Request::to_http`](crate::hypersync::Request::to_http),
//! [`client::Response::to_http`](crate::client::Response::to_http),
//! [`hypersync::ClientResponse::to_http`](crate::hypersync::ClientResponse::to_http).

/// A response status: a `u16` (`200`), or with the `http` feature an
/// `http::StatusCode`.
///
/// ```
/// fn code(status: impl nextloop::IntoStatus) -> u16 {
///     status.into_status()
/// }
/// assert_eq!(code(404), 404);
/// ```
pub trait IntoStatus {
    /// The status code.
    fn into_status(self) -> u16;
}

impl IntoStatus for u16 {
    fn into_status(self) -> u16 {
        self
    }
}

#[cfg(feature = "http")]
impl IntoStatus for http::StatusCode {
    fn into_status(self) -> u16 {
        self.as_u16()
    }
}

#[cfg(feature = "http")]
impl From<crate::Version> for http::Version {
    fn from(v: crate::Version) -> http::Version {
        match v {
            crate::Version::Http10 => http::Version::HTTP_10,
            crate::Version::Http11 => http::Version::HTTP_11,
            crate::Version::Http2 => http::Version::HTTP_2,
        }
    }
}

/// A request head as `http::request::Parts` (the fields copied, in order).
#[cfg(feature = "http")]
pub(crate) fn request_parts<'a>(
    method: &str,
    target: &str,
    version: crate::Version,
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<http::request::Parts, http::Error> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(target)
        .version(version.into());
    for (name, value) in fields {
        builder = builder.header(name, value);
    }
    Ok(builder.body(())?.into_parts().0)
}

/// A response head as `http::response::Parts` (the fields copied, in
/// order; the reason phrase is not kept).
#[cfg(feature = "http")]
pub(crate) fn response_parts<'a>(
    status: u16,
    version: crate::Version,
    fields: impl Iterator<Item = (&'a str, &'a [u8])>,
) -> Result<http::response::Parts, http::Error> {
    let mut builder = http::Response::builder()
        .status(status)
        .version(version.into());
    for (name, value) in fields {
        builder = builder.header(name, value);
    }
    Ok(builder.body(())?.into_parts().0)
}
