//! The hasher of the term dictionary. std's SipHash resists hash flooding, which a dictionary of one schema's own
//! words does not need, and cost more than a tenth of the index build; this is the multiply-rotate hash of rustc
//! (FxHash), eight bytes at a time.

use std::hash::{BuildHasherDefault, Hasher};

/// Builds [`FxHasher`]s: deterministic, no random state.
pub(crate) type FxBuildHasher = BuildHasherDefault<FxHasher>;

#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn equal_strings_hash_alike_and_neighbours_differ() {
        let build = FxBuildHasher::default();
        assert_eq!(build.hash_one("customer"), build.hash_one(String::from("customer")));
        let hashes: std::collections::HashSet<u64> =
            ["order", "orders", "order_", "客户", "客", "", "a_much_longer_identifier_name"]
                .iter()
                .map(|w| build.hash_one(w))
                .collect();
        assert_eq!(hashes.len(), 7);
    }
}
