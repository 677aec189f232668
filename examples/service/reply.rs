//! A successful answer, kept as plain data so that it can be stored and replayed.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use revkv::Version;
use revkv::http::Caching;
use serde::{Deserialize, Serialize};

/// Status, headers and JSON body of an answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: StatusCode, body: &impl Serialize) -> Self {
        Self {
            status: status.as_u16(),
            headers: vec![(CONTENT_TYPE.to_string(), "application/json".to_owned())],
            // The views are strings and numbers, which always serialize.
            body: serde_json::to_string(body).unwrap_or_default(),
        }
    }

    /// `status` with a body that is not JSON; the caller sets its `Content-Type`.
    pub fn text(status: StatusCode, body: String) -> Self {
        Self {
            status: status.as_u16(),
            headers: Vec::new(),
            body,
        }
    }

    /// `201 Created` for the resource at `location`, with its version as `ETag`.
    pub fn created(location: &str, version: Version, body: &impl Serialize) -> Self {
        Self::json(StatusCode::CREATED, body)
            .with_header(&LOCATION, location)
            .with_etag(version)
    }

    /// `status` without a body, such as `204 No Content` or `304 Not Modified`.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status: status.as_u16(),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn with_etag(self, version: Version) -> Self {
        let tag = revkv::http::etag(version);
        self.with_header(&ETAG, tag.to_str().unwrap_or_default())
    }

    /// `Cache-Control` as `caching` says.
    pub fn with_caching(self, caching: Caching) -> Self {
        self.with_header(&CACHE_CONTROL, caching.as_str())
    }

    pub fn with_headers(mut self, headers: &HeaderMap) -> Self {
        for (name, value) in headers {
            if let Ok(value) = value.to_str() {
                self = self.with_header(name, value);
            }
        }
        self
    }

    pub fn with_header(mut self, name: &HeaderName, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_owned()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        for (name, value) in self.headers {
            // Built from valid names and values above; a stored reply of another build that
            // is not is left out rather than failing the answer.
            if let (Ok(name), Ok(value)) =
                (HeaderName::try_from(name), HeaderValue::try_from(value))
            {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}
