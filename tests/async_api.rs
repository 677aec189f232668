//! The async API under concurrent tasks, on a current-thread runtime and on a multi-thread one:
//! the same conflicts as the blocking API, no lost update, one holder per unique value, and the
//! change feed as a stream. On etcd when `REVKV_ETCD_ENDPOINTS` is set, like every test here.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;

use futures::StreamExt;
use revkv::{AsyncCollection, AsyncStore, Conflict, Durability, Error, Retention, Store, Version};
use serde::{Deserialize, Serialize};
use tokio::sync::Barrier;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    name: String,
    email: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Counter {
    hits: u64,
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs the test `body` makes on both kinds of runtime, each on a fresh store.
fn on_both_runtimes<F, Fut>(body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = revkv::Result<()>>,
{
    for runtime in [current_thread(), multi_thread()] {
        let store = Store::builder()
            .change_feed(Retention::default())
            .open()
            .expect("a store");
        runtime
            .block_on(body(store))
            .expect("the test's calls succeed");
    }
}

fn users(store: &Store) -> revkv::Result<AsyncCollection<User>> {
    let users = store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.clone())
        .open()?;
    Ok(users.to_async())
}

fn counters(store: &Store) -> revkv::Collection<Counter> {
    store
        .collection::<Counter>("counters")
        .open()
        .expect("counters")
}

fn user(name: &str, email: &str) -> User {
    User {
        name: name.into(),
        email: email.into(),
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

#[test]
fn a_stale_update_is_a_version_mismatch_carrying_the_current_version() {
    on_both_runtimes(|store| async move {
        let users = users(&store)?;
        let v1 = users.insert("u1", user("ann", "ann@example.com")).await?;
        let v2 = users
            .update("u1", v1, user("ann b", "ann@example.com"))
            .await?;
        let stale = users
            .update("u1", v1, user("ann c", "ann@example.com"))
            .await;
        match stale {
            Err(Error::Conflict(Conflict::VersionMismatch {
                expected, current, ..
            })) => {
                assert_eq!(expected, v1);
                assert_eq!(current, Some(v2));
            }
            other => panic!("expected a version mismatch, got {other:?}"),
        }
        let current = users.get("u1").await?.expect("present");
        assert_eq!(
            (current.version, current.value.name.as_str()),
            (v2, "ann b")
        );
        users.delete("u1", v2).await?;
        assert!(users.get("u1").await?.is_none());
        let v3 = users.insert("u1", user("ann", "ann@example.com")).await?;
        assert!(
            v3 > v2,
            "a re-created record starts above every earlier version"
        );
        Ok(())
    });
}

#[test]
fn sixteen_registrations_with_one_email_make_one_user() {
    on_both_runtimes(|store| async move {
        let users = users(&store)?;
        let start = Arc::new(Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (users, start) = (users.clone(), Arc::clone(&start));
                tokio::spawn(assert_send(async move {
                    start.wait().await;
                    let key = format!("user-{i}");
                    users.insert(&key, user(&key, "same@example.com")).await
                }))
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            match task.await.expect("task panicked") {
                Ok(_) => created += 1,
                Err(Error::Conflict(Conflict::Unique { index, .. })) => assert_eq!(index, "email"),
                Err(other) => return Err(other),
            }
        }
        assert_eq!(created, 1);
        let holder = users
            .find_unique("email", "same@example.com")
            .await?
            .expect("one user holds the address");
        let stored: Vec<_> = users.blocking().iter().collect::<revkv::Result<_>>()?;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].1.value, holder.value);
        Ok(())
    });
}

#[test]
fn sixty_four_tasks_incrementing_four_keys_lose_nothing() {
    on_both_runtimes(|store| async move {
        let counters = store.collection::<Counter>("counters").open()?.to_async();
        for key in 0..4 {
            counters
                .insert(&key.to_string(), Counter { hits: 0 })
                .await?;
        }
        let start = Arc::new(Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (counters, start) = (counters.clone(), Arc::clone(&start));
                tokio::spawn(assert_send(async move {
                    start.wait().await;
                    let mut versions = Vec::new();
                    for _ in 0..5 {
                        let bump = |c: &Counter| Counter { hits: c.hits + 1 };
                        let done = counters.update_with(&(i % 4).to_string(), bump).await?;
                        versions.push(done.version);
                    }
                    Ok::<_, Error>(versions)
                }))
            })
            .collect();
        let mut versions: Vec<Version> = Vec::new();
        for task in tasks {
            versions.extend(task.await.expect("task panicked")?);
        }
        for key in 0..4 {
            let counter = counters.get(&key.to_string()).await?.expect("present");
            assert_eq!(counter.value.hits, 16 * 5, "key {key}");
        }
        let all = versions.len();
        versions.sort_unstable();
        versions.dedup();
        assert_eq!(versions.len(), all, "every update has its own version");
        Ok(())
    });
}

#[test]
fn a_blocking_caller_and_tasks_take_turns_on_one_key() {
    let store = Store::temporary().unwrap();
    let counters = store.collection::<Counter>("counters").open().unwrap();
    counters.insert("k", Counter { hits: 0 }).unwrap();
    let runtime = multi_thread();
    let blocking = {
        let counters = counters.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                counters
                    .update_with("k", |c: &Counter| Counter { hits: c.hits + 1 })
                    .unwrap();
            }
        })
    };
    let tasks = counters.to_async();
    runtime.block_on(async {
        let spawned: Vec<_> = (0..8)
            .map(|_| {
                let tasks = tasks.clone();
                tokio::spawn(async move {
                    for _ in 0..25 {
                        let bump = |c: &Counter| Counter { hits: c.hits + 1 };
                        tasks.update_with("k", bump).await.unwrap();
                    }
                })
            })
            .collect();
        for task in spawned {
            task.await.unwrap();
        }
    });
    blocking.join().unwrap();
    assert_eq!(counters.get("k").unwrap().unwrap().value.hits, 400);
}

#[test]
fn the_change_feed_is_a_stream_that_waits_for_new_changes() {
    on_both_runtimes(|store| async move {
        let users = users(&store)?;
        let changes: AsyncStore = store.to_async();
        let v1 = users.insert("u1", user("ann", "ann@example.com")).await?;
        let mut stream = changes.changes(0)?;
        let first = stream.next().await.expect("a change")?;
        assert_eq!((first.key.as_str(), first.version), ("u1", v1));
        // Nothing new yet: the stream waits, and the update below wakes it.
        let mut next = stream.next();
        assert!(futures::poll!(&mut next).is_pending());
        let v2 = users
            .update("u1", v1, user("ann b", "ann@example.com"))
            .await?;
        let second = next.await.expect("a change")?;
        assert_eq!((second.key.as_str(), second.version), ("u1", v2));
        assert!(second.seq > first.seq);
        assert_eq!(stream.position(), second.seq);
        Ok(())
    });
}

#[test]
fn changes_committed_already_are_read_in_pages_without_waiting() {
    on_both_runtimes(|store| async move {
        let users = users(&store)?;
        let feed: AsyncStore = store.to_async();
        let mut written = Vec::new();
        for i in 0..3 {
            let version = users
                .insert(&format!("u{i}"), user("ann", &format!("{i}@x")))
                .await?;
            written.push((format!("u{i}"), version));
        }
        let first = feed.changes_after(0, 2).await?;
        let rest = feed.changes_after(first[1].seq, 10).await?;
        let read: Vec<_> = (first.iter().chain(&rest))
            .map(|change| (change.key.clone(), change.version))
            .collect();
        assert_eq!(read, written);
        assert!(first[0].seq < first[1].seq && first[1].seq < rest[0].seq);
        // Nothing after the last: an empty page at once, not a wait.
        assert!(feed.changes_after(rest[0].seq, 10).await?.is_empty());
        Ok(())
    });
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    stock: u32,
}

#[test]
fn sixteen_tasks_buying_from_a_stock_of_five_make_five_orders() {
    on_both_runtimes(|store| async move {
        let items = store.collection::<Item>("items").open()?.to_async();
        let orders = store.collection::<String>("orders").open()?.to_async();
        items.insert("sku", Item { stock: 5 }).await?;
        let start = Arc::new(Barrier::new(16));
        let buyers: Vec<_> = (0..16)
            .map(|i| {
                let (store, items, orders) = (store.to_async(), items.clone(), orders.clone());
                let start = Arc::clone(&start);
                tokio::spawn(assert_send(async move {
                    start.wait().await;
                    let order = format!("order-{i}");
                    let (items, orders, order) = (&items, &orders, &order);
                    store
                        .transaction(move |tx| {
                            Box::pin(async move {
                                let item = tx.get(items, "sku").await?.expect("the item");
                                // Lets the other buyers read the same stock before this one
                                // writes, on either runtime: the commit must tell.
                                tokio::task::yield_now().await;
                                if item.value.stock == 0 {
                                    let sold_out = Conflict::rule("out_of_stock", "sold out");
                                    return Err(sold_out.into());
                                }
                                let left = Item {
                                    stock: item.value.stock - 1,
                                };
                                tx.update(items, "sku", item.version, left).await?;
                                tx.insert(orders, order, "sku".to_owned()).await?;
                                Ok(())
                            })
                        })
                        .await
                }))
            })
            .collect();
        let mut bought = 0;
        for buyer in buyers {
            match buyer.await.expect("task panicked") {
                Ok(()) => bought += 1,
                Err(Error::Conflict(conflict)) => {
                    assert_eq!(conflict.to_string(), "out_of_stock: sold out");
                }
                Err(other) => return Err(other),
            }
        }
        assert_eq!(bought, 5);
        let left = items.get("sku").await?.expect("the item").value.stock;
        assert_eq!(left, 0);
        let placed = orders.blocking().iter().count();
        assert_eq!(placed, 5, "one order for each unit sold");
        Ok(())
    });
}

#[test]
fn flushes_from_many_tasks_all_resolve_and_every_acknowledged_write_is_there_after_a_reopen() {
    // What makes a flush durable is the engine's sync, which the crash tests check; closing a
    // store syncs too, so the reopen here checks the writes, and the flushes that every task
    // awaits must resolve, on either runtime.
    let dir = tempfile::tempdir().expect("a directory");
    for runtime in [current_thread(), multi_thread()] {
        let store = Store::open(dir.path()).expect("store");
        let (writes, counters) = (store.to_async(), counters(&store).to_async());
        runtime.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let (writes, counters) = (writes.clone(), counters.clone());
                    tokio::spawn(assert_send(async move {
                        let key = format!("k{i}");
                        match counters.get(&key).await? {
                            Some(now) => {
                                let next = Counter {
                                    hits: now.value.hits + 1,
                                };
                                counters.update(&key, now.version, next).await?;
                            }
                            None => {
                                counters.insert(&key, Counter { hits: 1 }).await?;
                            }
                        }
                        writes.flush().await
                    }))
                })
                .collect();
            for task in tasks {
                task.await.expect("task panicked").expect("flushed");
            }
        });
    }
    let store = Store::open(dir.path()).expect("reopened");
    let counters = counters(&store);
    for i in 0..32 {
        let counter = counters
            .get(&format!("k{i}"))
            .expect("read")
            .expect("there");
        assert_eq!(counter.value.hits, 2, "k{i}");
    }
}

#[test]
fn durable_writes_wait_for_their_group_commit_off_the_runtime_threads() {
    let dir = tempfile::tempdir().expect("a directory");
    for (round, runtime) in [current_thread(), multi_thread()].into_iter().enumerate() {
        let store = Store::builder()
            .path(dir.path())
            .durability(Durability::Immediate)
            .open()
            .expect("store");
        let counters = counters(&store).to_async();
        let waited = runtime.block_on(async {
            let tasks: Vec<_> = (0..32)
                .map(|i| {
                    let counters = counters.clone();
                    tokio::spawn(assert_send(async move {
                        let key = format!("r{round}-k{i}");
                        let mut write = pin!(counters.insert(&key, Counter { hits: 1 }));
                        // Run inline, a write would finish at its first poll, its `fdatasync`
                        // included, while the runtime's thread waited.
                        let mut first_poll = None;
                        let written = poll_fn(|cx| {
                            let poll = write.as_mut().poll(cx);
                            first_poll.get_or_insert(poll.is_pending());
                            poll
                        })
                        .await;
                        written.map(|_| first_poll == Some(true))
                    }))
                })
                .collect();
            let mut waited = 0;
            for task in tasks {
                waited += usize::from(task.await.expect("task panicked").expect("written"));
            }
            waited
        });
        assert!(
            waited > 0,
            "no write of round {round} left the runtime's thread"
        );
    }
    let store = Store::open(dir.path()).expect("reopened");
    let counters = counters(&store);
    for round in 0..2 {
        for i in 0..32 {
            let key = format!("r{round}-k{i}");
            assert!(counters.get(&key).expect("read").is_some(), "{key}");
        }
    }
}

#[test]
fn a_store_without_a_change_feed_says_so() {
    let store = Store::temporary().unwrap();
    let refused = store.to_async().changes(0).unwrap_err();
    assert!(matches!(refused, Error::NoChangeFeed), "{refused:?}");
}
