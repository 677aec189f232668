//! Runs the example service on 127.0.0.1, port 0, and talks to it with a real HTTP client.
//!
//! Each test binary includes the service with `#[path = "../examples/service/app.rs"] mod app;`
//! and this module with `mod support;`, and uses a different part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::thread::JoinHandle;

use revkv::http::Policy;
use revkv::{Retention, Store};
use serde_json::Value;
use tokio::sync::oneshot;
use ureq::http::{HeaderMap, Request};

use crate::app::{self, App, Settings};

/// The service, served on its own runtime until dropped; dropping it stops the server and
/// closes the store (unless the test holds another handle to it).
pub struct Service {
    pub address: SocketAddr,
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Service {
    /// The service on a fresh temporary store with a change feed, as `main.rs` opens it
    /// (without the background sweeper), with the default policy and settings.
    pub fn start() -> Self {
        Self::start_with(feed_store().open().expect("store"), Policy::default())
    }

    pub fn start_with(store: Store, policy: Policy) -> Self {
        Self::start_configured(store, policy, Settings::default())
    }

    pub fn start_configured(store: Store, policy: Policy, settings: Settings) -> Self {
        let app = App::open(store, settings).expect("the service opens its collections");
        let router = app::router(app.clone(), policy);
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                address_tx
                    .send(listener.local_addr().expect("address"))
                    .expect("the test waits for the address");
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let address = address_rx.recv().expect("the server starts");
        Self {
            address,
            app,
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn client(&self) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            base: format!("http://{}", self.address),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.join().expect("the server thread ends cleanly");
        }
    }
}

/// A temporary store with a change feed; tests add a clock or a retention of their own.
pub fn feed_store() -> revkv::StoreBuilder {
    Store::builder().change_feed(Retention::default())
}

/// A client of one service. Cheap to clone; clones share a connection pool.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

/// What the service answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Client {
    /// Sends `method path` with `headers` and, if given, a body.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.to_owned()).expect("valid request");
        let mut response = self
            .agent
            .run(request)
            .unwrap_or_else(|e| panic!("the service answers {method} {path}: {e:?}"));
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_string().expect("a UTF-8 body"),
        }
    }

    /// Sends `body` as `application/json`, with extra `headers`.
    pub fn send_json(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Answer {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.send(method, path, &all, &body.to_string())
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send("GET", path, headers, "")
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.send_json("POST", path, &[], body)
    }

    /// Registers a user; returns its id and `ETag`.
    pub fn create_user(&self, username: &str, email: &str) -> (String, String) {
        let answer = self.post(
            "/users",
            &serde_json::json!({"username": username, "email": email}),
        );
        assert_eq!(answer.status, 201, "{}", answer.body);
        let id = answer.json()["id"].as_str().expect("id").to_owned();
        (id, answer.header("etag").to_owned())
    }

    /// Creates an item with `stock` pieces.
    pub fn create_item(&self, sku: &str, stock: u32) {
        let answer = self.post("/items", &serde_json::json!({"sku": sku, "stock": stock}));
        assert_eq!(answer.status, 201, "{}", answer.body);
    }

    /// The item's stock, read over HTTP.
    pub fn stock(&self, sku: &str) -> u64 {
        let answer = self.get(&format!("/items/{sku}"), &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["stock"].as_u64().expect("stock")
    }
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// The header's value; panics when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .to_str()
            .expect("visible ASCII")
    }

    /// Checks that this is an RFC 9457 problem with `status` and `type` about `instance`,
    /// with a title and a detail, and exactly the extension members in `members`; returns
    /// the body.
    pub fn assert_problem(
        &self,
        status: u16,
        problem_type: &str,
        instance: &str,
        members: &Value,
    ) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), "application/problem+json");
        let body = self.json();
        let mut rest = body.as_object().expect("a JSON object").clone();
        assert_eq!(
            rest.remove("type"),
            Some(Value::from(problem_type)),
            "{body}"
        );
        assert_eq!(rest.remove("status"), Some(Value::from(status)), "{body}");
        assert_eq!(
            rest.remove("instance"),
            Some(Value::from(instance)),
            "{body}"
        );
        for sentence in ["title", "detail"] {
            let text = rest.remove(sentence);
            let text = text.as_ref().and_then(Value::as_str).unwrap_or_default();
            assert!(!text.is_empty(), "no {sentence} in {body}");
        }
        assert_eq!(&Value::Object(rest), members, "extension members of {body}");
        body
    }
}
