//! Lists a page at a time, as Google's AIP-158 defines them: the client asks for a `limit`
//! (coerced down to the route's maximum) and resumes with the opaque `page_token` the previous
//! page gave it; the answer links the next page (`Link: <...>; rel="next"`, RFC 8288).

use http::{HeaderValue, Uri};

use super::error::HttpError;
use super::problem::{HttpProblem, ProblemKind};
use crate::Query;

/// The query parameters of a list route: `limit` and `page_token`.
///
/// ```
/// use revkv::Query;
/// use revkv::http::ListRequest;
///
/// let list = ListRequest::from_query(Some("limit=500&page_token=abc"), 50, 100)?;
/// assert_eq!(list.limit(), 100, "coerced down to the maximum");
/// assert_eq!(list.page_token(), Some("abc"));
/// let query = list.apply(Query::index("state", "pending"));
/// assert_eq!(query, Query::index("state", "pending").limit(100).after("abc"));
/// # Ok::<(), revkv::http::HttpError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRequest {
    limit: usize,
    page_token: Option<String>,
}

impl ListRequest {
    /// Reads `limit` and `page_token` from a request's query string (percent-decoded; other
    /// parameters are the route's own). A missing or zero `limit` is `default_limit`; one
    /// above `max_limit` is `max_limit`; an empty `page_token` is none.
    ///
    /// # Errors
    /// `400` ([`ProblemKind::InvalidQuery`]) for a `limit` that is not a whole number, or a
    /// parameter given twice.
    pub fn from_query(
        query: Option<&str>,
        default_limit: usize,
        max_limit: usize,
    ) -> Result<Self, HttpError> {
        let mut limit = None;
        let mut page_token = None;
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match &*name {
                "limit" => &mut limit,
                "page_token" => &mut page_token,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(invalid(format!("{name} is given more than once")));
            }
        }
        let limit = match limit.as_deref() {
            None | Some("") => default_limit,
            // A number too large to hold is over the maximum like any other.
            Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse::<usize>().unwrap_or(usize::MAX)
            }
            Some(text) => {
                return Err(invalid(format!(
                    "limit must be a whole number, not {text:?}"
                )));
            }
        };
        let limit = if limit == 0 { default_limit } else { limit };
        Ok(Self {
            limit: limit.clamp(1, max_limit.max(1)),
            page_token: page_token.filter(|token| !token.is_empty()),
        })
    }

    /// The number of records to answer at most.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The token of the page to answer, if not the first.
    #[must_use]
    pub fn page_token(&self) -> Option<&str> {
        self.page_token.as_deref()
    }

    /// `query`, limited to this request's page and resumed after its token. A token of
    /// another list makes the query fail with
    /// [`Error::InvalidPageToken`](crate::Error::InvalidPageToken), which the adapter answers
    /// with `400`.
    pub fn apply(&self, query: Query) -> Query {
        let query = query.limit(self.limit);
        match &self.page_token {
            Some(token) => query.after(token),
            None => query,
        }
    }
}

fn invalid(detail: String) -> HttpError {
    HttpProblem::of_kind(ProblemKind::InvalidQuery)
        .with_detail(detail)
        .into()
}

/// The `Link` header value for the page after the one answered to `uri`: the same path and
/// parameters, with `page_token` set to `token` (RFC 8288: `<...>; rel="next"`).
///
/// ```
/// let uri: http::Uri = "/orders?state=pending&page_token=old&limit=2".parse().unwrap();
/// let link = revkv::http::next_link(&uri, "n3xt");
/// assert_eq!(link, r#"</orders?state=pending&limit=2&page_token=n3xt>; rel="next""#);
/// ```
#[must_use]
pub fn next_link(uri: &Uri, token: &str) -> HeaderValue {
    let kept = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .filter(|(name, _)| name != "page_token");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .append_pair("page_token", token)
        .finish();
    let link = format!("<{}?{query}>; rel=\"next\"", uri.path());
    // Percent-encoded by the serializer, the link is visible ASCII.
    HeaderValue::try_from(link).unwrap_or_else(|_| HeaderValue::from_static("</>; rel=\"next\""))
}
