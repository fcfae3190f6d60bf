//! Sliding anti-replay window over transport counters (RFC 6479 style, as
//! in the Linux WireGuard implementation): a ring of 64-bit words where a
//! bit is set for every counter seen; words are cleared as the window
//! slides forward, so an update costs O(1) amortised.

/// Bits in one bitmap word.
const WORD_BITS: u64 = 64;
/// Words in the ring (a power of two).
const WORDS: usize = 128;
/// Total bits in the ring.
const RING_BITS: u64 = WORDS as u64 * WORD_BITS;
/// How far behind the newest counter a counter may be and still be
/// accepted: one word less than the ring, so the word being filled never
/// aliases the oldest one still in the window.
pub const WINDOW: u64 = RING_BITS - WORD_BITS;

/// The receive-side replay state of one keypair.
#[derive(Clone)]
pub(crate) struct ReplayWindow {
    /// One more than the greatest counter accepted (0: none yet).
    next: u64,
    bitmap: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            next: 0,
            bitmap: [0; WORDS],
        }
    }
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// Whether `counter` would be accepted (not seen, not too old); does not
    /// record it. Called before the costly decryption.
    pub(crate) fn check(&self, counter: u64) -> bool {
        let Some(n) = counter.checked_add(1) else {
            return false;
        };
        if n > self.next {
            return true;
        }
        if n.saturating_add(WINDOW) < self.next {
            return false;
        }
        let (word, bit) = Self::position(counter);
        self.bitmap[word] & bit == 0
    }

    /// Records `counter` as received; false if it was a replay or too old.
    /// Only call after the message authenticated.
    pub(crate) fn update(&mut self, counter: u64) -> bool {
        let Some(n) = counter.checked_add(1) else {
            return false;
        };
        if n.saturating_add(WINDOW) < self.next {
            return false;
        }
        if n > self.next {
            let current_word = self.next / WORD_BITS;
            let new_word = n / WORD_BITS;
            let clear = (new_word - current_word).min(WORDS as u64);
            for i in 1..=clear {
                let index = ((current_word + i) % WORDS as u64) as usize;
                self.bitmap[index] = 0;
            }
            self.next = n;
        }
        let (word, bit) = Self::position(counter);
        let seen = self.bitmap[word] & bit != 0;
        self.bitmap[word] |= bit;
        !seen
    }

    /// Word index and bit mask of `counter` in the ring. The ring is indexed
    /// by `counter + 1` so that `next`'s word bookkeeping matches.
    fn position(counter: u64) -> (usize, u64) {
        let n = counter.wrapping_add(1);
        let word = ((n / WORD_BITS) % WORDS as u64) as usize;
        (word, 1u64 << (n % WORD_BITS))
    }
}
