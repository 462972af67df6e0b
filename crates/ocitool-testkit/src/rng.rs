//! A small deterministic PRNG (SplitMix64): reproducible data without a dependency.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `buf` with incompressible bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// Fills `buf` with text-like bytes that compress about 3:1 (words from a small
    /// vocabulary), like binaries and text in real layers.
    pub fn fill_compressible(&mut self, buf: &mut [u8]) {
        const WORDS: [&[u8]; 16] = [
            b"the ",
            b"layer ",
            b"image ",
            b"config ",
            b"digest ",
            b"blob ",
            b"index ",
            b"manifest ",
            b"lib",
            b"usr/",
            b"bin/",
            b"share/",
            b"\n",
            b"0x",
            b"{\"a\":1}",
            b"\t",
        ];
        let mut i = 0;
        while i < buf.len() {
            let r = self.next_u64();
            for k in 0..8 {
                let w = if (r >> (k * 8 + 4)) & 3 == 0 {
                    // some noise so the ratio is realistic, not extreme
                    &[(r >> (k * 8)) as u8, (r >> (k * 8 + 3)) as u8][..]
                } else {
                    WORDS[((r >> (k * 8)) & 15) as usize]
                };
                let n = w.len().min(buf.len() - i);
                buf[i..i + n].copy_from_slice(&w[..n]);
                i += n;
                if i >= buf.len() {
                    break;
                }
            }
        }
    }
}
