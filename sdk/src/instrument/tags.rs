//! Tag sets as map keys: owned for storage in one allocation, borrowed for lookups, hashed the
//! same way so an unbound emit finds its series without allocating.
use std::hash::{BuildHasher, Hasher};

/// Tags as callers pass them: borrowed key/value pairs.
pub type Tags<'a> = &'a [(&'a str, &'a str)];

/// Ends every key and every value in a [`TagKey`]: a byte that never occurs in UTF-8.
const END: u8 = 0xff;

/// An owned tag set, in the order it was first given, stored compactly as one byte string:
/// `key END value END key END value END ...` (one allocation per series instead of one per
/// key, one per value and one for the list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagKey(Box<[u8]>);

impl TagKey {
    pub(crate) fn from_borrowed(tags: Tags<'_>) -> Self {
        let len = tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut bytes = Vec::with_capacity(len);
        for (k, v) in tags {
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(END);
            bytes.extend_from_slice(v.as_bytes());
            bytes.push(END);
        }
        TagKey(bytes.into_boxed_slice())
    }

    /// The `(key, value)` pairs, in their original order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        // Every part was copied from a `&str` and the split is at a byte UTF-8 never contains.
        fn text(b: &[u8]) -> &str {
            std::str::from_utf8(b).unwrap_or_default()
        }
        let mut parts = self.0.split(|b| *b == END);
        (0..self.len()).map(move |_| {
            let k = parts.next().map(text).unwrap_or_default();
            let v = parts.next().map(text).unwrap_or_default();
            (k, v)
        })
    }

    /// Number of pairs.
    pub(crate) fn len(&self) -> usize {
        self.0.iter().filter(|b| **b == END).count() / 2
    }

    /// Whether this key holds exactly `tags`, in the same order.
    pub(crate) fn matches(&self, tags: Tags<'_>) -> bool {
        let mut rest = &self.0[..];
        for (k, v) in tags {
            for part in [k.as_bytes(), v.as_bytes()] {
                match rest.strip_prefix(part) {
                    Some([END, tail @ ..]) => rest = tail,
                    _ => return false,
                }
            }
        }
        rest.is_empty()
    }

    pub(crate) fn hash_with(&self, build: &impl BuildHasher) -> u64 {
        let mut h = build.build_hasher();
        hash_pairs(&mut h, self.len(), self.pairs());
        h.finish()
    }
}

/// The hash a [`TagKey`] of `tags` has.
pub(crate) fn hash_tags(build: &impl BuildHasher, tags: Tags<'_>) -> u64 {
    let mut h = build.build_hasher();
    hash_pairs(&mut h, tags.len(), tags.iter().copied());
    h.finish()
}

fn hash_pairs<'a, H: Hasher>(
    state: &mut H,
    len: usize,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) {
    state.write_usize(len);
    for (k, v) in pairs {
        state.write(k.as_bytes());
        state.write_u8(END);
        state.write(v.as_bytes());
        state.write_u8(END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_and_owned_hash_alike() {
        let s = foldhash::fast::FixedState::with_seed(7);
        for tags in [&[("a", "1"), ("b", "2")][..], &[], &[("", "")], &[("k", ""), ("", "v")]] {
            let key = TagKey::from_borrowed(tags);
            assert_eq!(hash_tags(&s, tags), key.hash_with(&s), "{tags:?}");
            assert_eq!(key.pairs().collect::<Vec<_>>(), tags.to_vec());
            assert_eq!(key.len(), tags.len());
            assert!(key.matches(tags));
        }
    }

    #[test]
    fn pair_boundaries_matter() {
        let s = foldhash::fast::FixedState::with_seed(7);
        assert_ne!(hash_tags(&s, &[("ab", "c")]), hash_tags(&s, &[("a", "bc")]));
        let key = TagKey::from_borrowed(&[("ab", "c")]);
        assert!(!key.matches(&[("a", "bc")]));
        assert!(!key.matches(&[("ab", "c"), ("d", "e")]));
        assert!(!key.matches(&[]));
        assert!(!TagKey::from_borrowed(&[("ab", "c"), ("d", "e")]).matches(&[("ab", "c")]));
    }
}
