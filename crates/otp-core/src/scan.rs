//! Byte scans that run over every field of every send, eight bytes at a time.
//!
//! The word tricks are the classic "has a zero byte" / "has a byte below n" tests (exact for
//! whether such a byte exists; n at most 0x80): about a quarter of the instructions of a
//! byte-by-byte loop, with no unsafe code.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte is below `limit` (at most 0x80) or equal to one of `specials`.
#[inline]
pub(crate) fn any_byte(bytes: &[u8], limit: u8, specials: &[u8]) -> bool {
    debug_assert!(limit <= 0x80);
    let below = ONES * u64::from(limit);
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let mut hit = word.wrapping_sub(below) & !word & HIGHS;
        for &special in specials {
            let matched = word ^ (ONES * u64::from(special));
            hit |= matched.wrapping_sub(ONES) & !matched & HIGHS;
        }
        if hit != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|b| *b < limit || specials.contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The same answer as the obvious byte loop, in every lane and the tail.
        #[test]
        fn matches_the_byte_loop(bytes in proptest::collection::vec(any::<u8>(), 0..40), limit in 0u8..=0x80) {
            for specials in [&b""[..], b"\"\\", b"\x7f"] {
                let expected = bytes.iter().any(|b| *b < limit || specials.contains(b));
                prop_assert_eq!(any_byte(&bytes, limit, specials), expected);
            }
        }

        /// Mostly-plain text with a rare byte in any position.
        #[test]
        fn finds_a_single_rare_byte(len in 1usize..40, at in 0usize..40, rare in prop::sample::select(vec![0u8, 0x1f, b'"', b'\\', 0x7f])) {
            let mut bytes = vec![b'a'; len];
            bytes[at % len] = rare;
            prop_assert!(any_byte(&bytes, 0x20, b"\"\\\x7f"));
            prop_assert!(!any_byte(&vec![b'a'; len], 0x20, b"\"\\\x7f"));
        }
    }
}
