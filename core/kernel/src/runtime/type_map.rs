//! Maps keyed by `TypeId`, hashed by the id itself: a `TypeId` is already a hash, so the
//! per-lookup SipHash a plain `HashMap` spends on it (on every request's extractors and every
//! event published) buys nothing.

use std::any::TypeId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by `TypeId`.
pub(crate) type TypeMap<V> = HashMap<TypeId, V, BuildHasherDefault<TypeIdHasher>>;

/// Passes a `TypeId`'s own hash through; any other input is folded with FNV-1a, so the
/// hasher stays correct if `TypeId`'s `Hash` ever writes bytes instead of one `u64`.
#[derive(Default)]
pub(crate) struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = self.0 ^ 0xcbf2_9ce4_8422_2325;
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_types_are_distinct_keys() {
        let mut map: TypeMap<&str> = TypeMap::default();
        map.insert(TypeId::of::<u8>(), "u8");
        map.insert(TypeId::of::<String>(), "String");
        map.insert(TypeId::of::<Vec<u8>>(), "Vec<u8>");
        assert_eq!(map[&TypeId::of::<u8>()], "u8");
        assert_eq!(map[&TypeId::of::<String>()], "String");
        assert_eq!(map[&TypeId::of::<Vec<u8>>()], "Vec<u8>");
        assert!(!map.contains_key(&TypeId::of::<u16>()));
    }
}
