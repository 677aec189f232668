//! Ranges of keys: what a scan reads and what a commit may require unchanged.

use std::ops::{Bound, RangeBounds};

/// The keys between two bounds, in byte order; either bound may be open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub(crate) lower: Bound<Vec<u8>>,
    pub(crate) upper: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub(crate) fn prefix(prefix: &[u8]) -> Self {
        Self {
            lower: Bound::Included(prefix.to_vec()),
            upper: prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded),
        }
    }

    /// Every key at or after `start`.
    pub(crate) fn from(start: &[u8]) -> Self {
        Self {
            lower: Bound::Included(start.to_vec()),
            upper: Bound::Unbounded,
        }
    }

    /// The bounds, borrowed, as the ordered maps below take them.
    pub(crate) fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (as_slice(&self.lower), as_slice(&self.upper))
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        RangeBounds::<[u8]>::contains(&self.bounds(), key)
    }

    /// Whether no key can lie in the range.
    pub(crate) fn is_empty(&self) -> bool {
        match self.bounds() {
            (Bound::Included(l), Bound::Included(u)) => l > u,
            (Bound::Included(l) | Bound::Excluded(l), Bound::Excluded(u))
            | (Bound::Excluded(l), Bound::Included(u)) => l >= u,
            _ => false,
        }
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    bound.as_ref().map(Vec::as_slice)
}

/// The first key after every key that starts with `prefix`; `None` if there is none (the
/// prefix is empty or all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_with_the_prefix() {
        let range = KeyRange::prefix(b"a\xff");
        assert!(range.contains(b"a\xff"));
        assert!(range.contains(b"a\xff\xff\x01"));
        assert!(!range.contains(b"b"));
        assert!(!range.contains(b"a"));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert!(KeyRange::prefix(b"").contains(b"\xff\xff"));
    }

    #[test]
    fn empty_ranges_are_recognised() {
        let range = |lower, upper| KeyRange { lower, upper };
        let b = |k: &[u8]| k.to_vec();
        assert!(range(Bound::Included(b(b"b")), Bound::Excluded(b(b"b"))).is_empty());
        assert!(range(Bound::Excluded(b(b"b")), Bound::Included(b(b"b"))).is_empty());
        assert!(!range(Bound::Included(b(b"b")), Bound::Included(b(b"b"))).is_empty());
        assert!(range(Bound::Included(b(b"c")), Bound::Included(b(b"b"))).is_empty());
        assert!(!range(Bound::Unbounded, Bound::Excluded(b(b"a"))).is_empty());
    }
}
