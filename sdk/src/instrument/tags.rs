//! Tag sets as map keys: owned for storage, borrowed for lookups, hashed the same way so an
//! unbound emit finds its series without allocating.
use std::hash::{Hash, Hasher};

/// Tags as callers pass them: borrowed key/value pairs.
pub type Tags<'a> = &'a [(&'a str, &'a str)];

/// An owned tag set, in the order it was first given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagKey(pub Box<[(Box<str>, Box<str>)]>);

impl TagKey {
    pub(crate) fn from_borrowed(tags: Tags<'_>) -> Self {
        TagKey(tags.iter().map(|(k, v)| (Box::from(*k), Box::from(*v))).collect())
    }
}

fn hash_pairs<'a, H: Hasher>(
    state: &mut H,
    len: usize,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) {
    state.write_usize(len);
    for (k, v) in pairs {
        state.write(k.as_bytes());
        state.write_u8(0xff);
        state.write(v.as_bytes());
        state.write_u8(0xff);
    }
}

impl Hash for TagKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_pairs(state, self.0.len(), self.0.iter().map(|(k, v)| (&**k, &**v)));
    }
}

/// A borrowed view used for lookups.
pub(crate) struct Borrowed<'a>(pub Tags<'a>);

impl Hash for Borrowed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_pairs(state, self.0.len(), self.0.iter().copied());
    }
}

impl hashbrown::Equivalent<TagKey> for Borrowed<'_> {
    fn equivalent(&self, key: &TagKey) -> bool {
        self.0.len() == key.0.len()
            && self.0.iter().zip(key.0.iter()).all(|((a, b), (c, d))| *a == &**c && *b == &**d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn borrowed_and_owned_hash_alike() {
        let s = foldhash::fast::FixedState::with_seed(7);
        let tags: Tags<'_> = &[("a", "1"), ("b", "2")];
        assert_eq!(s.hash_one(Borrowed(tags)), s.hash_one(TagKey::from_borrowed(tags)));
    }

    #[test]
    fn pair_boundaries_matter() {
        let s = foldhash::fast::FixedState::with_seed(7);
        assert_ne!(s.hash_one(Borrowed(&[("ab", "c")])), s.hash_one(Borrowed(&[("a", "bc")])));
    }
}
