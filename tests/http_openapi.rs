//! The example service publishes its OpenAPI 3.1 document at `GET /openapi.json`, generated
//! from its handlers: every documented operation is served, every failure it documents is a
//! problem body, the precondition and idempotency headers are documented where they are read,
//! and the SKU pattern is the rule the service applies. (CI also fuzzes the service against
//! the document with schemathesis: `.ci/schemathesis`.)
#![cfg(all(feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod support;

use serde_json::{Value, json};
use support::Service;

fn document(service: &Service) -> Value {
    let answer = service.client().get("/openapi.json", &[]);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-type"), "application/json");
    answer.json()
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item");
            item.iter()
                .map(|(method, op)| (method.to_uppercase(), path.clone(), op.clone()))
        })
        .collect()
}

fn header_params(op: &Value) -> Vec<String> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "header")
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

#[test]
fn the_document_is_openapi_3_1_and_every_operation_in_it_is_served() {
    let service = Service::start();
    let doc = document(&service);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let ops = operations(&doc);
    assert_eq!(
        ops.len(),
        18,
        "{:?}",
        ops.iter().map(|(m, p, _)| (m, p)).collect::<Vec<_>>()
    );
    let client = service.client();
    for (method, path, _) in &ops {
        let concrete = path
            .replace("{id}", "x_missing")
            .replace("{sku}", "x_missing");
        let answer = client.send_json(method, &concrete, &[], &json!({}));
        let routed = !matches!(
            (
                answer.status,
                answer.body.contains("no resource is at this path")
            ),
            (404, true) | (405, _)
        );
        assert!(
            routed,
            "{method} {path} is documented but not served: {}",
            answer.body
        );
    }
}

#[test]
fn every_documented_failure_is_a_problem_and_the_headers_read_are_documented() {
    let service = Service::start();
    let doc = document(&service);
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let status: u16 = status.parse().expect("a status");
            let content = &response["content"];
            if status >= 400 {
                let schema = &content["application/problem+json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
        let headers = header_params(&op);
        let record = path.contains('{') && !path.ends_with("transitions");
        if record {
            for name in [
                "If-Match",
                "If-None-Match",
                "If-Modified-Since",
                "If-Unmodified-Since",
            ] {
                assert!(
                    headers.iter().any(|h| h == name),
                    "{method} {path} lacks {name}"
                );
            }
        }
        if method == "GET" && record {
            assert!(responses.contains_key("304"), "{method} {path} lacks 304");
        }
        if matches!(method.as_str(), "PUT" | "DELETE" | "PATCH") {
            assert!(responses.contains_key("428"), "{method} {path} lacks 428");
        }
        if method == "POST" {
            assert!(
                headers.iter().any(|h| h == "Idempotency-Key"),
                "POST {path}"
            );
        }
    }
}

#[test]
fn the_documented_sku_pattern_is_the_rule_the_service_applies() {
    let service = Service::start();
    let doc = document(&service);
    let schema = &doc["components"]["schemas"]["ItemInput"]["properties"]["sku"];
    let pattern = regex::Regex::new(schema["pattern"].as_str().expect("pattern")).expect("regex");
    let client = service.client();
    let long = "s".repeat(65);
    let longest = "s".repeat(64);
    for sku in [
        ".", "..", "...", ".a", "a.", "a..b", "-", "_", "a/b", "a b", "", &long, &longest, "é",
    ] {
        let created = client.post("/items", &json!({"sku": sku, "stock": 1}));
        assert_eq!(
            created.status == 201,
            pattern.is_match(sku),
            "{sku:?}: the service answered {}, the pattern says {}",
            created.status,
            pattern.is_match(sku)
        );
    }
}
