//! A reader that turns fuzz input into choices: bytes, little-endian
//! integers and length-prefixed chunks. Past the end every read yields
//! zero or an empty slice, so any input is a complete program.

/// Fuzz input being consumed from the front.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads `data` from its start.
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, or `None` at the end.
    pub fn next_byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// The next byte, 0 at the end.
    pub fn u8(&mut self) -> u8 {
        self.next_byte().unwrap_or(0)
    }

    /// The next two bytes as a little-endian `u16` (missing bytes are 0).
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next eight bytes as a little-endian `u64` (missing bytes are 0).
    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = rest;
        head
    }

    /// A chunk: a little-endian `u16` length, then up to that many bytes.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Writes inputs for [`Input`] (seeds, tests).
#[derive(Debug, Default, Clone)]
pub struct Program {
    bytes: Vec<u8>,
}

impl Program {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one byte.
    pub fn byte(mut self, b: u8) -> Self {
        self.bytes.push(b);
        self
    }

    /// Appends a little-endian `u16`.
    pub fn u16(mut self, v: u16) -> Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a little-endian `u64`.
    pub fn u64(mut self, v: u64) -> Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends raw bytes.
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.bytes.extend_from_slice(b);
        self
    }

    /// Appends a chunk (u16 length, bytes), as [`Input::chunk`] reads it.
    ///
    /// # Panics
    ///
    /// When `b` is longer than 65,535 bytes (seeds are small).
    pub fn chunk(self, b: &[u8]) -> Self {
        let n = u16::try_from(b.len()).expect("seed chunks are under 64 KiB");
        self.u16(n).raw(b)
    }

    /// The bytes.
    pub fn build(self) -> Vec<u8> {
        self.bytes
    }
}
