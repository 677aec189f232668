//! The framework's own ceiling for the example service's request rates in BENCHMARKS.md: axum
//! answering the service's `GET /items/{sku}` and `PUT /users/{id}` with the same JSON, from
//! memory, with no store. `benches/wrk/` has the commands that load both.
//!
//! ```sh
//! cargo run --release --example json_ceiling -- 127.0.0.1:8090
//! ```

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, put};
use serde_json::{Value, json};

/// `GET /items/{sku}`: an item as the service shows it, with its validators.
async fn get_item(Path(sku): Path<String>) -> (HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, "\"7\"".parse().expect("a header value"));
    headers.insert(
        header::CACHE_CONTROL,
        "no-cache".parse().expect("a header value"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("a header value"),
    );
    (
        headers,
        json!({"sku": sku, "stock": 5, "version": 7}).to_string(),
    )
}

/// `PUT /users/{id}`: parses the body as the service does and answers the user with the next
/// version.
async fn put_user(Path(id): Path<String>, body: String) -> Result<(HeaderMap, String), StatusCode> {
    let user: Value = serde_json::from_str(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let version = user["version"].as_u64().unwrap_or(0) + 1;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("a header value"),
    );
    let answer = json!({
        "id": id,
        "username": user["username"],
        "email": user["email"],
        "version": version,
    });
    Ok((headers, answer.to_string()))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let app = Router::new()
        .route("/items/{sku}", get(get_item))
        .route("/users/{id}", put(put_user));
    let listener = tokio::net::TcpListener::bind(&address).await?;
    axum::serve(listener, app).await
}
