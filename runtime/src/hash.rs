//! The CRC32C struct hash of `nf-semantics.md` §1.6.
//!
//! Two hashes are observable in NF behaviour: the load balancer's CHT row and the
//! connection limiter's sketch cells. Both are built from [`crc32c_step`], which must give
//! bit-for-bit the result of the x86 SSE4.2 `crc32` instruction on 32-bit data (no initial
//! or final inversion), so that our choices match the C NFs.

/// The reflected CRC32C (Castagnoli) polynomial.
const POLY: u32 = 0x82F6_3B78;

/// Slicing-by-4 tables: `TABLES[k][b]` is the CRC of byte `b` followed by `k` zero bytes.
/// Built at compile time so the per-packet cost is four lookups instead of 32 shifts.
static TABLES: [[u32; 256]; 4] = build_tables();

const fn build_tables() -> [[u32; 256]; 4] {
    let mut t = [[0u32; 256]; 4];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = (c >> 1) ^ if c & 1 != 0 { POLY } else { 0 };
            k += 1;
        }
        t[0][n] = c;
        n += 1;
    }
    let mut n = 0;
    while n < 256 {
        let mut k = 1;
        while k < 4 {
            let prev = t[k - 1][n];
            t[k][n] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            k += 1;
        }
        n += 1;
    }
    t
}

/// One CRC32C step over a 32-bit word: `acc ^= x`, then 32 reflected shift/xor rounds.
///
/// Equal to the SSE4.2 `crc32` instruction on 32-bit data (`_mm_crc32_u32(acc, x)`),
/// which is what the C NFs use; computed with tables so it runs on any CPU.
#[inline]
pub fn crc32c_step(acc: u32, x: u32) -> u32 {
    let v = acc ^ x;
    TABLES[3][(v & 0xff) as usize]
        ^ TABLES[2][((v >> 8) & 0xff) as usize]
        ^ TABLES[1][((v >> 16) & 0xff) as usize]
        ^ TABLES[0][(v >> 24) as usize]
}

/// The C `struct_hash`: folds [`crc32c_step`] over the fields (each zero-extended to 32
/// bits, in declaration order), starting from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StructHasher {
    acc: u32,
}

impl StructHasher {
    /// A hasher with accumulator 0, as in the C code.
    pub fn new() -> Self {
        StructHasher { acc: 0 }
    }

    /// Feeds one field, already zero-extended to 32 bits (see §1.6 for byte order).
    #[inline]
    pub fn word(&mut self, x: u32) {
        self.acc = crc32c_step(self.acc, x);
    }

    /// The hash of the fields fed so far.
    #[inline]
    pub fn finish(&self) -> u32 {
        self.acc
    }
}

/// Per-row salts of the count-min sketch (`sketch-util.c`).
pub const SKETCH_SALTS: [u32; 4] = [0x9b78350f, 0x9bcf144c, 0x8ab29a3e, 0x34d48bf5];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The literal definition of §1.6, as the oracle for the table-driven version.
    fn crc32c_step_bitwise(acc: u32, x: u32) -> u32 {
        let mut acc = acc ^ x;
        for _ in 0..32 {
            acc = (acc >> 1) ^ if acc & 1 != 0 { POLY } else { 0 };
        }
        acc
    }

    /// Standard CRC32C (init and final inversion) over little-endian words.
    fn crc32c_standard(bytes: &[u8]) -> u32 {
        assert_eq!(bytes.len() % 4, 0);
        let acc = bytes.chunks_exact(4).fold(!0u32, |acc, w| {
            crc32c_step(acc, u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
        });
        !acc
    }

    #[test]
    fn rfc3720_check_values() {
        // iSCSI CRC32C test vectors (RFC 3720, B.4).
        assert_eq!(crc32c_standard(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c_standard(&[0xffu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c_standard(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(crc32c_standard(&descending), 0x113F_DB5C);
    }

    #[test]
    fn small_known_values() {
        assert_eq!(crc32c_step(0, 0), 0);
        assert_eq!(crc32c_step(0, 1), crc32c_step_bitwise(0, 1));
        // Edge words: only the top bit set, and all bits set.
        assert_eq!(
            crc32c_step(0, 0x8000_0000),
            crc32c_step_bitwise(0, 0x8000_0000)
        );
        assert_eq!(
            crc32c_step(0, 0xffff_ffff),
            crc32c_step_bitwise(0, 0xffff_ffff)
        );
    }

    #[test]
    fn struct_hasher_folds_from_zero() {
        let mut h = StructHasher::new();
        assert_eq!(h.finish(), 0);
        h.word(0x0100_000a);
        h.word(0x0200_000a);
        assert_eq!(
            h.finish(),
            crc32c_step_bitwise(crc32c_step_bitwise(0, 0x0100_000a), 0x0200_000a)
        );
        assert_eq!(StructHasher::default(), StructHasher::new());
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn matches_sse42_instruction() {
        if !std::arch::is_x86_feature_detected!("sse4.2") {
            return;
        }
        #[target_feature(enable = "sse4.2")]
        unsafe fn hw(acc: u32, x: u32) -> u32 {
            std::arch::x86_64::_mm_crc32_u32(acc, x)
        }
        let mut acc = 0x1234_5678u32;
        for i in 0..10_000u32 {
            let x = i.wrapping_mul(0x9E37_79B9) ^ acc;
            // SAFETY: sse4.2 support was checked above.
            let want = unsafe { hw(acc, x) };
            assert_eq!(crc32c_step(acc, x), want);
            acc = want;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn table_equals_bitwise(acc: u32, x: u32) {
            prop_assert_eq!(crc32c_step(acc, x), crc32c_step_bitwise(acc, x));
        }
    }
}
