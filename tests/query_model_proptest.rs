//! Random writes, then random queries paged to the end with their tokens, against an in-memory
//! model: every page is exactly the model's records for the query, in order; and any string
//! given as a page token is a typed error or a page of the query's own records, never a panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use revkv::{Collection, Error, Query, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Item {
    tag: String,
}

/// Keys and tags that share prefixes and hold zero bytes, where orders are easy to get wrong.
const KEYS: [&str; 8] = ["a", "a\0", "a\0b", "ab", "b", "b\u{e9}", "ba", "c"];
const TAGS: [&str; 5] = ["", "x", "x\0", "x\0y", "xy"];

#[derive(Clone, Debug)]
enum Write {
    Put(usize, usize),
    Delete(usize),
}

#[derive(Clone, Debug)]
enum Ask {
    Tag(usize),
    TagRange(usize, usize),
    Range(usize, usize),
    Prefix(usize),
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![
        3 => (0..KEYS.len(), 0..TAGS.len()).prop_map(|(k, t)| Write::Put(k, t)),
        1 => (0..KEYS.len()).prop_map(Write::Delete),
    ]
}

fn ask() -> impl Strategy<Value = Ask> {
    let (k, t) = (0..KEYS.len(), 0..TAGS.len());
    prop_oneof![
        t.clone().prop_map(Ask::Tag),
        (t.clone(), t).prop_map(|(a, b)| Ask::TagRange(a, b)),
        (k.clone(), k.clone()).prop_map(|(a, b)| Ask::Range(a, b)),
        k.prop_map(Ask::Prefix),
    ]
}

fn open(store: &Store) -> Collection<Item> {
    store
        .collection::<Item>("items")
        .index("tag", |i: &Item| i.tag.clone())
        .open()
        .expect("items")
}

/// The query and the model's answer to it, in the query's order.
fn expected(ask: &Ask, reverse: bool, model: &BTreeMap<String, String>) -> (Query, Vec<String>) {
    let (query, mut keys): (Query, Vec<String>) = match *ask {
        Ask::Tag(t) => {
            let keys = model
                .iter()
                .filter(|(_, tag)| *tag == TAGS[t])
                .map(|(k, _)| k.clone());
            (Query::index("tag", TAGS[t]), keys.collect())
        }
        Ask::TagRange(a, b) => {
            let mut by_tag: Vec<(&String, &String)> = (model.iter())
                .filter(|(_, tag)| (TAGS[a]..TAGS[b]).contains(&tag.as_str()))
                .map(|(k, tag)| (tag, k))
                .collect();
            by_tag.sort();
            let keys = by_tag.into_iter().map(|(_, k)| k.clone()).collect();
            (Query::index_range("tag", TAGS[a], TAGS[b]), keys)
        }
        Ask::Range(a, b) => {
            let keys = model
                .keys()
                .filter(|k| (KEYS[a]..KEYS[b]).contains(&k.as_str()));
            (Query::range(KEYS[a], KEYS[b]), keys.cloned().collect())
        }
        Ask::Prefix(p) => {
            let keys = model.keys().filter(|k| k.starts_with(KEYS[p]));
            (Query::prefix(KEYS[p]), keys.cloned().collect())
        }
    };
    if reverse {
        keys.reverse();
        return (query.reverse(), keys);
    }
    (query, keys)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pages_match_the_model(
        writes in proptest::collection::vec(write(), 0..40),
        asks in proptest::collection::vec((ask(), any::<bool>(), 1..5_usize), 1..12),
    ) {
        // On the store's own engine: sled's ranges (or etcd's, in CI's second run).
        let store = Store::temporary().expect("store");
        let items = open(&store);
        let mut model = BTreeMap::new();
        for write in writes {
            match write {
                Write::Put(k, t) => {
                    let item = Item { tag: TAGS[t].into() };
                    match items.get(KEYS[k]).expect("get") {
                        Some(current) => items.update(KEYS[k], current.version, item),
                        None => items.insert(KEYS[k], item),
                    }
                    .expect("write");
                    model.insert(KEYS[k].to_owned(), TAGS[t].to_owned());
                }
                Write::Delete(k) => {
                    if let Some(current) = items.get(KEYS[k]).expect("get") {
                        items.delete(KEYS[k], current.version).expect("delete");
                        model.remove(KEYS[k]);
                    }
                }
            }
        }
        for (ask, reverse, limit) in asks {
            let (query, expected) = expected(&ask, reverse, &model);
            let mut found = Vec::new();
            let mut page = items.query(&query.clone().limit(limit)).expect("a page");
            for pages in 1.. {
                prop_assert!(page.records.len() <= limit);
                prop_assert!(pages <= expected.len() / limit + 1, "pages that never end");
                found.extend(page.records.iter().map(|(k, _)| k.clone()));
                let Some(token) = page.next.take() else { break };
                page = items.query(&query.clone().limit(limit).after(&token)).expect("a page");
            }
            prop_assert_eq!(&found, &expected, "{:?}", query);
            let whole = items.query(&query).expect("one page");
            prop_assert!(whole.next.is_none());
            prop_assert_eq!(whole.records.len(), expected.len());
        }
        prop_assert!(store.verify().expect("verify").is_clean());
    }

    #[test]
    fn any_token_is_an_error_or_a_page_of_the_query(
        token in "\\PC{0,40}|[A-Za-z0-9_-]{0,40}",
        ask in ask(),
        reverse in any::<bool>(),
    ) {
        let store = Store::builder().memory(&revkv::Memory::new()).open().expect("store");
        let items = open(&store);
        let mut model = BTreeMap::new();
        for (i, key) in KEYS.iter().enumerate() {
            items.insert(key, Item { tag: TAGS[i % TAGS.len()].into() }).expect("insert");
            model.insert((*key).to_owned(), TAGS[i % TAGS.len()].to_owned());
        }
        let (query, expected) = expected(&ask, reverse, &model);
        match items.query(&query.after(&token)) {
            Ok(page) => {
                for (key, _) in &page.records {
                    prop_assert!(expected.contains(key), "{key:?} is not the query's");
                }
            }
            Err(Error::InvalidPageToken { .. }) => {}
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}
