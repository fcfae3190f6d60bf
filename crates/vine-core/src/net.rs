//! IPv4 prefixes: the unit of overlay address ownership.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A canonical IPv4 prefix (no host bits set), e.g. `10.42.1.0/24`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Prefix {
    network: Ipv4Addr,
    len: u8,
}

/// Why a string is not a canonical IPv4 prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// No `/len` part.
    #[error("`{0}` is not a prefix: write it as ADDRESS/LENGTH, e.g. 10.42.1.0/24")]
    MissingLength(String),
    /// The address part is not an IPv4 address.
    #[error("`{0}` is not an IPv4 address")]
    BadAddress(String),
    /// The length is not a number from 0 to 32.
    #[error("`{0}` is not a prefix length: use a number from 0 to 32")]
    BadLength(String),
    /// Host bits are set below the prefix length.
    #[error("`{given}` has host bits set; the prefix is {canonical}")]
    HostBitsSet {
        /// What was written.
        given: String,
        /// The canonical form.
        canonical: Ipv4Prefix,
    },
}

impl Ipv4Prefix {
    /// The prefix of length `len` that contains `addr` (host bits cleared).
    /// Returns `None` if `len > 32`.
    pub fn containing(addr: Ipv4Addr, len: u8) -> Option<Self> {
        if len > 32 {
            return None;
        }
        Some(Self {
            network: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        })
    }

    /// Like [`Ipv4Prefix::containing`], with `len` clamped to 32.
    pub fn containing_clamped(addr: Ipv4Addr, len: u8) -> Self {
        let len = len.min(32);
        Self {
            network: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        }
    }

    /// The network address.
    pub const fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a collection size
    pub const fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is the zero-length prefix `0.0.0.0/0`.
    pub const fn is_default(&self) -> bool {
        self.len == 0
    }

    /// The last address in the prefix.
    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.len))
    }

    /// Whether `addr` lies inside this prefix.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == u32::from(self.network)
    }

    /// Whether the two prefixes share at least one address.
    pub fn overlaps(&self, other: &Ipv4Prefix) -> bool {
        let len = self.len.min(other.len);
        u32::from(self.network) & mask(len) == u32::from(other.network) & mask(len)
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

impl fmt::Debug for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((addr, len)) = s.split_once('/') else {
            return Err(PrefixError::MissingLength(s.to_owned()));
        };
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| PrefixError::BadAddress(addr.to_owned()))?;
        let len: u8 = match len.parse() {
            Ok(n) if n <= 32 && !len.starts_with('+') => n,
            _ => return Err(PrefixError::BadLength(len.to_owned())),
        };
        let canonical =
            Self::containing(addr, len).ok_or(PrefixError::BadLength(len.to_string()))?;
        if canonical.network != addr {
            return Err(PrefixError::HostBitsSet {
                given: s.to_owned(),
                canonical,
            });
        }
        Ok(canonical)
    }
}

impl Serialize for Ipv4Prefix {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().expect("test prefix is valid")
    }

    #[test]
    fn parses_canonical_prefixes() {
        assert_eq!(p("10.42.1.0/24").to_string(), "10.42.1.0/24");
        assert_eq!(p("0.0.0.0/0").len(), 0);
        assert_eq!(p("10.42.1.7/32").last(), Ipv4Addr::new(10, 42, 1, 7));
        assert_eq!(p("10.42.1.0/24").last(), Ipv4Addr::new(10, 42, 1, 255));
    }

    #[test]
    fn rejects_malformed_prefixes() {
        assert!(matches!(
            "10.42.1.0".parse::<Ipv4Prefix>(),
            Err(PrefixError::MissingLength(_))
        ));
        assert!(matches!(
            "10.42.1/24".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadAddress(_))
        ));
        assert!(matches!(
            "10.42.1.0/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength(_))
        ));
        assert!(matches!(
            "10.42.1.0/+8".parse::<Ipv4Prefix>(),
            Err(PrefixError::BadLength(_))
        ));
        let err = "10.42.1.5/24".parse::<Ipv4Prefix>().expect_err("host bits");
        assert_eq!(
            err,
            PrefixError::HostBitsSet {
                given: "10.42.1.5/24".into(),
                canonical: p("10.42.1.0/24")
            }
        );
    }

    #[test]
    fn containment_and_overlap() {
        let a = p("10.42.0.0/16");
        let b = p("10.42.1.0/24");
        let c = p("10.43.0.0/24");
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!b.overlaps(&c));
        assert!(a.contains(Ipv4Addr::new(10, 42, 200, 1)));
        assert!(!b.contains(Ipv4Addr::new(10, 42, 2, 1)));
        assert!(p("0.0.0.0/0").overlaps(&c));
    }
}
