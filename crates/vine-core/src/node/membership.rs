//! A remote peer's membership as this node sees it, and the enrollment
//! rule: an announce is accepted only from an allowlisted peer that names
//! this node's network and claims exactly the prefix the allowlist binds to
//! it; a newer announce renews it, an older one is ignored (until a new
//! session with the peer comes up); withdrawal, expiry and shutdown end it.

use super::observe::RejectReason;
use crate::net::Ipv4Prefix;

/// Why an announce is refused, if it is: `allowed` is the prefix the
/// allowlist binds the sender to (`None`: not allowlisted).
pub(super) fn check_announce(
    allowed: Option<Ipv4Prefix>,
    our_network: &str,
    network_id: &str,
    prefix: Ipv4Prefix,
) -> Option<RejectReason> {
    match allowed {
        None => Some(RejectReason::NotAllowlisted),
        Some(_) if network_id != our_network => Some(RejectReason::WrongNetwork),
        Some(configured) if configured != prefix => Some(RejectReason::PrefixMismatch),
        Some(_) => None,
    }
}

/// What an accepted announce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepted {
    /// Older than the one in force: nothing changed.
    Stale,
    /// Renewed an active membership.
    Renewed,
    /// Started a membership.
    New,
}

/// Membership of one peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Membership(State);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Never enrolled.
    #[default]
    None,
    /// Enrolled with this prefix.
    Active { prefix: Ipv4Prefix, seq: u64 },
    /// Was enrolled; withdrawn or expired.
    Ended,
}

impl Membership {
    /// The prefix while enrolled.
    pub fn prefix(&self) -> Option<Ipv4Prefix> {
        match self.0 {
            State::Active { prefix, .. } => Some(prefix),
            _ => None,
        }
    }

    /// Applies an announce that passed [`check_announce`].
    pub fn accept(&mut self, prefix: Ipv4Prefix, seq: u64) -> Accepted {
        let was = match self.0 {
            State::Active { seq: old, .. } if seq < old => return Accepted::Stale,
            State::Active { .. } => Accepted::Renewed,
            _ => Accepted::New,
        };
        self.0 = State::Active { prefix, seq };
        was
    }

    /// A new session with the peer came up: its announces may count from
    /// the start again (a restarted peer numbers them from 1), so the next
    /// one is not taken for stale.
    pub fn session_replaced(&mut self) {
        if let State::Active { seq, .. } = &mut self.0 {
            *seq = 0;
        }
    }

    /// Ends an active membership; returns the prefix it held.
    pub fn end(&mut self) -> Option<Ipv4Prefix> {
        let prefix = self.prefix()?;
        self.0 = State::Ended;
        Some(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_accepts_announces_counted_from_the_start() {
        let prefix: Ipv4Prefix = "10.42.1.0/24".parse().expect("prefix");
        let mut m = Membership::default();
        assert_eq!(m.accept(prefix, 7), Accepted::New);
        assert_eq!(m.accept(prefix, 1), Accepted::Stale);
        m.session_replaced();
        assert_eq!(m.accept(prefix, 1), Accepted::Renewed);
        assert_eq!(m.prefix(), Some(prefix));
    }
}
