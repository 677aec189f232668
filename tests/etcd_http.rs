//! The example service as two instances on one etcd store, over real HTTP: sixteen clients,
//! eight on each instance, register one e-mail at once; one is created, fifteen get `409`.
#![cfg(all(feature = "etcd", feature = "axum", feature = "openapi"))]

#[path = "../examples/service/app.rs"]
mod app;
mod etcd;
mod support;

use std::sync::Barrier;

use revkv::http::Policy;
use serde_json::json;
use support::Service;

const CLIENTS: usize = 16;

#[test]
fn sixteen_clients_on_two_instances_register_one_email_once() {
    let cluster = etcd::Cluster::start();
    let instances = [
        Service::start_with(cluster.store("shop"), Policy::default()),
        Service::start_with(cluster.store("shop"), Policy::default()),
    ];
    let barrier = Barrier::new(CLIENTS);
    let answers: Vec<_> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (barrier, client) = (&barrier, instances[i % 2].client());
                s.spawn(move || {
                    let email = if i % 4 < 2 {
                        "race@example.com"
                    } else {
                        "RACE@example.com"
                    };
                    let user = json!({"username": format!("racer-{i}"), "email": email});
                    barrier.wait();
                    (i, client.post("/users", &user))
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("client"))
            .collect()
    });
    let created: Vec<_> = answers.iter().filter(|(_, a)| a.status == 201).collect();
    let refused = answers.iter().filter(|(_, a)| a.status == 409).count();
    assert_eq!((created.len(), refused), (1, CLIENTS - 1), "{answers:?}");
    for (_, conflict) in answers.iter().filter(|(_, a)| a.status == 409) {
        conflict.assert_problem(
            409,
            "/problems/unique-violation",
            "/users",
            &json!({"conflict": "unique", "index": "email"}),
        );
    }
    // The other instance serves the winner as created.
    let (winner, answer) = created[0];
    let other = instances[(winner + 1) % 2].client();
    assert_eq!(
        other.get(answer.header("location"), &[]).json(),
        answer.json()
    );
    let report = instances[0].app.store.verify().expect("verify");
    assert!(report.is_clean(), "{report}");
}
