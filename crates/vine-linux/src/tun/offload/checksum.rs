//! The Internet checksum (RFC 1071): a ones-complement sum of big-endian
//! 16-bit words.
//!
//! The sum is accumulated over 64-bit big-endian words with end-around
//! carry, which folds to the same 16-bit result (ones-complement addition
//! does not care about word size) while touching each byte once in 8-byte
//! loads; four independent accumulators keep the adds from serialising.

/// Adds `data`'s 16-bit big-endian words (an odd last byte is padded with
/// zero) to `initial` in ones-complement arithmetic and returns the unfolded
/// sum. `data` must start at an even offset of the checksummed region for
/// sums of several pieces to compose.
pub fn sum(data: &[u8], initial: u64) -> u64 {
    let mut acc = [initial, 0, 0, 0];
    let mut blocks = data.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in acc.iter_mut().zip(block.chunks_exact(8)) {
            *lane = add(*lane, u64::from_be_bytes(to8(word)));
        }
    }
    let mut total = acc.iter().fold(0, |t, &lane| add(t, lane));
    let mut words = blocks.remainder().chunks_exact(8);
    for word in &mut words {
        total = add(total, u64::from_be_bytes(to8(word)));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        // Pad to 8 bytes on the right: the words keep their big-endian
        // positions, so this is the same as padding the last byte.
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        total = add(total, u64::from_be_bytes(last));
    }
    total
}

/// Folds a [`sum`] to 16 bits (not complemented).
pub fn fold(sum: u64) -> u16 {
    let s = (sum & 0xffff_ffff) + (sum >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff) + (s >> 16);
    let s = (s & 0xffff) + (s >> 16);
    // After two 32-bit and two 16-bit folds the value fits in 16 bits.
    (s & 0xffff) as u16
}

/// The Internet checksum of `data`: the complement of its folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// The unfolded sum of the IPv4 pseudo-header for TCP/UDP: source,
/// destination, protocol and L4 length.
pub fn pseudo_header_sum(src: [u8; 4], dst: [u8; 4], protocol: u8, l4_len: u16) -> u64 {
    u64::from(u32::from_be_bytes(src))
        + u64::from(u32::from_be_bytes(dst))
        + u64::from(protocol)
        + u64::from(l4_len)
}

fn add(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

fn to8(word: &[u8]) -> [u8; 8] {
    let mut w = [0u8; 8];
    w.copy_from_slice(word);
    w
}
