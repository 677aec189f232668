//! How answers may be cached (RFC 9111): the `Cache-Control` a service sends with each `GET`.

use http::HeaderValue;

/// How an answer to `GET` or `HEAD` may be cached, sent as `Cache-Control` (RFC 9111 §5.2.2).
///
/// Without it, a shared cache may store an answer and serve it without asking the service,
/// for as long as its own heuristics say (RFC 9111 §4.2.2). [`Validators::headers`] sends
/// [`Caching::Revalidate`] with every record; the axum middleware `no_store_by_default`
/// (feature `axum`) sends [`Caching::NoStore`] with
/// every other answer that does not say, and problems always carry it.
///
/// [`Validators::headers`]: super::Validators::headers
///
/// ```
/// use revkv::http::Caching;
/// assert_eq!(Caching::Revalidate.header_value(), "no-cache");
/// assert_eq!(Caching::NoStore.header_value(), "no-store");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Caching {
    /// `no-cache`: a cache may keep the record but must revalidate it before every use, which
    /// its `ETag` makes cheap (`304` with no body). No client ever sees a stale version.
    Revalidate,
    /// `private, no-cache`: as [`Caching::Revalidate`], and only the client's own cache may keep
    /// it: for records that carry one person's data, such as an e-mail address.
    PrivateRevalidate,
    /// `no-store`: never kept. For answers that differ from one request to the next (a page of
    /// a change feed, statistics) or that concern one request only (errors).
    NoStore,
}

impl Caching {
    /// The `Cache-Control` value as text.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Revalidate => "no-cache",
            Self::PrivateRevalidate => "private, no-cache",
            Self::NoStore => "no-store",
        }
    }

    /// The `Cache-Control` value.
    #[must_use]
    pub const fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }
}
