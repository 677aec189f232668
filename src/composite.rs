//! Composite index values: several fields as one value, without ambiguity.

/// One index value made of several `parts`, such that no two different lists of parts give the
/// same value, and values sort as their lists do (part by part, each by its bytes; a list
/// before every longer list it begins). For a value unique within a scope, such as a VM name
/// within its region, where `format!("{region}/{name}")` would let `("a/b", "c")` and
/// `("a", "b/c")` collide; and for ranges of a leading part
/// ([`Query::index_range`](crate::Query::index_range)).
///
/// Each part is written with every `\0` doubled as `\0\u{1}`, then ended with `\0\0`. The value
/// is not meant to be read by people: a [`Policy`](crate::http::Policy) can leave it out of
/// problem bodies (`hide_index_value`).
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct Vm { region: String, name: String }
///
/// let store = revkv::Store::temporary()?;
/// let vms = store
///     .collection::<Vm>("vms")
///     .unique("name", |vm: &Vm| revkv::composite([&vm.region, &vm.name]))
///     .open()?;
/// vms.insert("vm-1", Vm { region: "a/b".into(), name: "c".into() })?;
/// vms.insert("vm-2", Vm { region: "a".into(), name: "b/c".into() })?; // no collision
/// assert!(vms.insert("vm-3", Vm { region: "a".into(), name: "b/c".into() }).is_err());
/// # Ok::<(), revkv::Error>(())
/// ```
pub fn composite<I, S>(parts: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut value = String::new();
    for part in parts {
        for c in part.as_ref().chars() {
            value.push(c);
            if c == '\0' {
                value.push('\u{1}');
            }
        }
        value.push_str("\0\0");
    }
    value
}

#[cfg(test)]
mod tests {
    use super::composite;

    proptest::proptest! {
        /// Different lists give different values, and values sort as the lists do.
        #[test]
        fn composites_are_injective_and_keep_the_order_of_their_parts(
            a in proptest::collection::vec("[a/\\x00\\x01]{0,3}", 0..4),
            b in proptest::collection::vec("[a/\\x00\\x01]{0,3}", 0..4),
        ) {
            let (x, y) = (composite(&a), composite(&b));
            assert_eq!(x == y, a == b, "{a:?} {b:?}");
            assert_eq!(x.as_bytes().cmp(y.as_bytes()), a.cmp(&b), "{a:?} {b:?}");
        }
    }

    #[test]
    fn parts_that_join_alike_stay_apart() {
        assert_ne!(composite(["a/b", "c"]), composite(["a", "b/c"]));
        assert_ne!(composite(["a\0", ""]), composite(["a", "\0"]));
    }
}
