//! Queries read a page at a time: key ranges, prefixes and index ranges, forward and in
//! reverse, resumed with page tokens that survive concurrent writes and refuse misuse.

use std::collections::BTreeSet;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use revkv::{Collection, Error, Page, Query, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    customer: String,
    day: String,
}

/// An order of ann's, on a day no query here asks about.
fn ann() -> Order {
    Order {
        customer: "ann".into(),
        day: "d".into(),
    }
}

fn open_orders(store: &Store) -> revkv::Result<Collection<Order>> {
    store
        .collection::<Order>("orders")
        .index("customer", |o: &Order| o.customer.clone())
        .index("day", |o: &Order| o.day.clone())
        .open()
}

fn keys(page: &Page<Order>) -> Vec<&str> {
    page.records.iter().map(|(k, _)| k.as_str()).collect()
}

/// Every record of `query`, reading pages of `limit`; the number of pages read.
fn all_pages(orders: &Collection<Order>, query: &Query, limit: usize) -> (Vec<String>, usize) {
    let mut found = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let mut q = query.clone().limit(limit);
        if let Some(token) = &token {
            q = q.after(token);
        }
        let page = orders.query(&q).expect("a page");
        pages += 1;
        assert!(page.records.len() <= limit);
        found.extend(page.records.into_iter().map(|(k, _)| k));
        match page.next {
            Some(next) => token = Some(next),
            None => return (found, pages),
        }
    }
}

#[test]
fn key_ranges_and_prefixes_are_half_open_in_both_directions() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    for i in 95..=205 {
        orders.insert(&format!("o-{i}"), ann())?;
    }
    let range = orders.query(&Query::range("o-100", "o-200"))?;
    assert_eq!(range.records.len(), 100, "o-100 up to o-199");
    assert_eq!(keys(&range).first(), Some(&"o-100"));
    assert_eq!(keys(&range).last(), Some(&"o-199"));
    assert!(range.next.is_none());

    let back = orders.query(&Query::range("o-100", "o-200").reverse())?;
    let mut reversed = keys(&back);
    reversed.reverse();
    assert_eq!(reversed, keys(&range));

    let prefix = orders.query(&Query::prefix("o-1").reverse().limit(5))?;
    assert_eq!(keys(&prefix), ["o-199", "o-198", "o-197", "o-196", "o-195"]);
    assert!(prefix.next.is_some());
    assert!(
        orders
            .query(&Query::range("o-2", "o-1"))?
            .records
            .is_empty(),
        "start past end"
    );
    assert_eq!(orders.query(&Query::all())?.records.len(), 111);
    Ok(())
}

#[test]
fn paging_through_an_index_returns_exactly_its_records_in_order() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    let mut ann = Vec::new();
    for i in 0..250 {
        let customer = if i % 5 == 0 { "bob" } else { "ann" };
        let key = format!("o-{:03}", (i * 37) % 250); // inserted out of order
        let day = format!("2026-12-{:02}", 1 + (i * 7) % 28);
        orders.insert(
            &key,
            Order {
                customer: customer.into(),
                day,
            },
        )?;
        if customer == "ann" {
            ann.push(key);
        }
    }
    ann.sort();
    for limit in [1, 7, 50, 200, 1000] {
        let (found, pages) = all_pages(&orders, &Query::index("customer", "ann"), limit);
        assert_eq!(found, ann, "limit {limit}");
        assert!(
            pages <= ann.len() / limit + 1,
            "limit {limit}: {pages} pages"
        );
        let (back, _) = all_pages(&orders, &Query::index("customer", "ann").reverse(), limit);
        assert_eq!(
            back,
            ann.iter().rev().cloned().collect::<Vec<_>>(),
            "limit {limit}"
        );
    }

    // A range of values: by day, then key, and the end day is not included.
    let mut expected: Vec<(String, String)> = Vec::new();
    for (key, record) in orders.query(&Query::all())?.records {
        if ("2026-12-01".."2026-12-08").contains(&record.value.day.as_str()) {
            expected.push((record.value.day.clone(), key));
        }
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, k)| k).collect();
    let (week, _) = all_pages(
        &orders,
        &Query::index_range("day", "2026-12-01", "2026-12-08"),
        9,
    );
    assert_eq!(week, expected);
    Ok(())
}

#[test]
fn a_unique_index_answers_queries_too() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = store
        .collection::<Order>("users")
        .unique("email", |o: &Order| o.customer.clone())
        .open()?;
    for (key, email) in [("u1", "c@x"), ("u2", "a@x"), ("u3", "b@x")] {
        users.insert(
            key,
            Order {
                customer: email.into(),
                day: "d".into(),
            },
        )?;
    }
    let page = users.query(&Query::index_range("email", "a@x", "c@x"))?;
    assert_eq!(keys(&page), ["u2", "u3"], "in value order");
    let page = users.query(&Query::index("email", "c@x"))?;
    assert_eq!(keys(&page), ["u1"]);
    Ok(())
}

#[test]
fn malformed_and_foreign_tokens_and_zero_limits_are_errors() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    for i in 0..5 {
        orders.insert(&format!("o-{i}"), ann())?;
    }
    let by_ann = Query::index("customer", "ann").limit(2);
    let token = orders.query(&by_ann)?.next.expect("more");
    assert_eq!(
        orders.query(&by_ann.clone().after(&token))?.records.len(),
        2
    );
    assert_eq!(
        orders
            .query(&by_ann.clone().limit(10).after(&token))?
            .records
            .len(),
        3,
        "the limit may change between pages"
    );
    let foreign = [
        Query::index("customer", "bob").after(&token),
        Query::index("customer", "ann").reverse().after(&token),
        Query::all().after(&token),
    ];
    for query in foreign {
        let err = orders.query(&query).unwrap_err();
        assert!(
            matches!(err, Error::InvalidPageToken { .. }),
            "{query:?}: {err:?}"
        );
    }
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).expect("ASCII");
    for bad in [
        "",
        "!!",
        "AAAA",
        "not a token at all",
        &flipped,
        &token[..token.len() - 2],
    ] {
        match orders.query(&by_ann.clone().after(bad)) {
            Err(Error::InvalidPageToken { .. }) => {}
            // A token cut or changed inside its position may still be a position of this
            // query: it resumes from there, within the query's records.
            Ok(page) => assert!(page.records.iter().all(|(_, r)| r.value.customer == "ann")),
            Err(other) => panic!("{bad:?}: {other:?}"),
        }
    }
    let err = orders.query(&Query::all().limit(0)).unwrap_err();
    assert!(matches!(err, Error::InvalidQuery { .. }), "{err:?}");
    Ok(())
}

/// Readers page through the index while writers insert and delete other records: every record
/// that stayed throughout appears exactly once, in order, on every pass.
#[test]
fn paging_while_others_write_never_skips_or_repeats_a_record_that_stayed() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    let stayed: BTreeSet<String> = (0..120).map(|i| format!("s-{i:03}")).collect();
    for key in &stayed {
        orders.insert(key, ann())?;
    }
    let done = AtomicBool::new(false);
    let written = AtomicUsize::new(0);
    let start = Barrier::new(3);
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let (orders, done, written, start) = (&orders, &done, &written, &start);
            scope.spawn(move || {
                start.wait();
                let mut i = 0;
                while !done.load(Ordering::Acquire) {
                    // Keys that sort between and around the ones that stay.
                    let key = format!("s-{:03}-{writer}-{i}", (i * 7) % 130);
                    let v = orders.insert(&key, ann()).expect("insert");
                    if i % 2 == 0 {
                        orders.delete(&key, v).expect("delete");
                    }
                    written.fetch_add(1, Ordering::Release);
                    i += 1;
                }
            });
        }
        start.wait();
        // Passes go on until at least 3 of them saw writes land while they paged.
        let mut overlapped = 0;
        for pass in 0.. {
            if pass >= 6 && overlapped >= 3 {
                break;
            }
            assert!(pass < 10_000, "the writers never wrote during a pass");
            let writes_before = written.load(Ordering::Acquire);
            let reverse = pass % 2 == 1;
            let mut query = Query::index("customer", "ann");
            if reverse {
                query = query.reverse();
            }
            let (found, _) = all_pages(&orders, &query, 7);
            let mut sorted = found.clone();
            sorted.sort();
            if reverse {
                sorted.reverse();
            }
            assert_eq!(found, sorted, "pass {pass}: out of order");
            let seen: Vec<&String> = found.iter().filter(|k| stayed.contains(*k)).collect();
            assert_eq!(
                seen.len(),
                stayed.len(),
                "pass {pass}: a record that stayed is missing or repeated"
            );
            let unique: BTreeSet<&String> = found.iter().collect();
            assert_eq!(
                unique.len(),
                found.len(),
                "pass {pass}: a record appeared twice"
            );
            if written.load(Ordering::Acquire) > writes_before {
                overlapped += 1;
            }
        }
        done.store(true, Ordering::Release);
    });
    Ok(())
}

#[test]
fn the_async_api_has_the_same_query() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let orders = open_orders(&store)?;
    orders.insert("o-1", ann())?;
    orders.insert("o-2", ann())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let orders = orders.to_async();
    let page = runtime.block_on(async {
        let task = tokio::spawn({
            let orders = orders.clone();
            async move {
                orders
                    .query(&Query::index("customer", "ann").limit(1))
                    .await
            }
        });
        task.await.expect("the task")
    })?;
    assert_eq!(keys(&page), ["o-1"]);
    let next = Query::index("customer", "ann").after(&page.next.expect("more"));
    let rest = runtime.block_on(orders.query(&next))?;
    assert_eq!(keys(&rest), ["o-2"]);
    Ok(())
}
