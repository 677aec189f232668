//! The records this process last read or wrote, kept where a read of the engine is a round
//! trip (etcd): a write that expects a version this process has seen guesses the record
//! unchanged instead of reading it, and the commit's compare of the record's bytes checks the
//! guess. So a get followed by an update is two round trips, not three, and an update of the
//! version this process just wrote is one. A wrong guess costs one more round trip, never a
//! wrong write: versions are never reused, so bytes that compare equal are the record read.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::backend::Bytes;

/// How many bytes of records are kept; past it, arbitrary ones make room.
const BUDGET: usize = 16 << 20;
/// Records larger than this are not kept: a round trip matters less beside their transfer.
const LARGEST: usize = 64 << 10;

#[derive(Default)]
pub(crate) struct Recent {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    records: HashMap<String, Bytes>,
    bytes: usize,
}

impl Recent {
    /// Remembers the bytes of `key` as just read or written (`None`: absent, forgotten).
    pub(crate) fn remember(&self, key: &str, bytes: Option<&Bytes>) {
        let mut kept = self.kept.lock();
        if let Some(old) = kept.records.remove(key) {
            kept.bytes -= old.len();
        }
        let Some(bytes) = bytes.filter(|b| b.len() <= LARGEST) else {
            return;
        };
        while kept.bytes + bytes.len() > BUDGET {
            let Some(evicted) = kept.records.keys().next().cloned() else {
                break;
            };
            if let Some(old) = kept.records.remove(&evicted) {
                kept.bytes -= old.len();
            }
        }
        kept.bytes += bytes.len();
        kept.records.insert(key.to_owned(), bytes.clone());
    }

    /// The bytes of `key` as last seen, if any.
    pub(crate) fn seen(&self, key: &str) -> Option<Bytes> {
        self.kept.lock().records.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::Bytes;
    use crate::collection::recent::{BUDGET, LARGEST, Recent};

    #[test]
    fn records_are_kept_within_the_budget_and_forgotten_when_gone() {
        let recent = Recent::default();
        let record = Bytes::from(vec![7; LARGEST]);
        let count = BUDGET / LARGEST + 10;
        for i in 0..count {
            recent.remember(&format!("k{i}"), Some(&record));
        }
        let kept = recent.kept.lock();
        assert!(kept.bytes <= BUDGET, "{} bytes kept", kept.bytes);
        assert_eq!(kept.bytes, kept.records.len() * LARGEST);
        drop(kept);
        let last = format!("k{}", count - 1);
        assert_eq!(recent.seen(&last).as_deref(), Some(&record[..]));
        recent.remember(&last, None);
        assert_eq!(recent.seen(&last), None);
        recent.remember("huge", Some(&Bytes::from(vec![0; LARGEST + 1])));
        assert_eq!(recent.seen("huge"), None, "larger than LARGEST is not kept");
    }
}
