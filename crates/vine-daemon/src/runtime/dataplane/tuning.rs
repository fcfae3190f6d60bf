//! [`DataplaneTuning`]: every knob of the dataplane in one value, filled
//! once where the daemon starts and passed down. The environment variables
//! below are documented overrides of the defaults, read here and nowhere
//! else in the daemon.

use std::time::Duration;
use vine_core::wg::aead::Backend;

use tracing::warn;

use super::busy_poll::{self, BusyPoll};
use super::sockets::Sockets;
use super::stream_spin::{self, StreamSpin};

/// How the dataplane runs. [`Default`] is what runs when no override is
/// set; [`DataplaneTuning::from_env`] applies the overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataplaneTuning {
    /// Dataplane threads: `Some(1)` (both directions on one thread),
    /// `Some(2)` (a thread per direction) or `None` (chosen by CPU count:
    /// one with one or two CPUs, else two). One thread needs the TUN
    /// offloads; without them it is always two.
    /// `VINE_DATAPLANE_THREADS=1|2`.
    pub threads: Option<usize>,
    /// How long the one-thread loop busy-polls for an answer after sending
    /// from idle (zero: off). `VINE_BUSY_POLL_US` (microseconds).
    pub busy_poll: Duration,
    /// How long the one-thread loop polls between the bursts of a stream
    /// before it sleeps (zero: off). `VINE_STREAM_SPIN_US` (microseconds).
    pub stream_spin: Duration,
    /// Whether the one-thread loop sends to and receives from each peer
    /// endpoint through a connected UDP socket. `VINE_CONNECTED_SOCKETS=0|1`.
    pub connected_sockets: bool,
    /// Whether segmentation offloads (TUN TSO/USO + GRO, UDP GSO) are
    /// asked for. Without them everything still works, one packet per
    /// system call. `VINE_OFFLOAD=0` turns them off (for comparisons and
    /// for kernels where they misbehave).
    pub offload: bool,
    /// Whether transport sealing and opening must use ring's ChaCha20-Poly1305
    /// even where vine's AVX-512 implementation could run. `VINE_AEAD=ring`.
    pub aead_ring: bool,
}

impl Default for DataplaneTuning {
    fn default() -> Self {
        Self {
            threads: None,
            busy_poll: busy_poll::DEFAULT_LIMIT,
            stream_spin: stream_spin::DEFAULT_LIMIT,
            connected_sockets: true,
            offload: true,
            aead_ring: false,
        }
    }
}

impl DataplaneTuning {
    /// The transport AEAD implementation and why: ring when
    /// [`aead_ring`](Self::aead_ring) is set (for A/B comparisons), else
    /// [`Backend::detect`]'s choice for this CPU.
    pub fn aead(&self) -> (Backend, &'static str) {
        if self.aead_ring {
            return (Backend::Ring, "VINE_AEAD=ring is set");
        }
        Backend::detect()
    }

    /// The defaults with the process environment's overrides applied. A
    /// value that is not understood is logged (with what is used instead)
    /// and leaves the default.
    pub fn from_env() -> Self {
        Self::from_vars(|var| std::env::var(var).ok())
    }

    /// The defaults with the overrides `var` returns (the value of each
    /// variable, `None` when unset) applied, as [`DataplaneTuning::from_env`]
    /// does for the environment.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let defaults = Self::default();
        let logged = |parsed: Result<Duration, String>, default| {
            parsed.unwrap_or_else(|e| {
                warn!("{e}");
                default
            })
        };
        let threads = match var("VINE_DATAPLANE_THREADS") {
            Some(v) if v == "1" => Some(1),
            Some(v) if v == "2" => Some(2),
            Some(v) => {
                let cpus = available_cpus();
                warn!(
                    "VINE_DATAPLANE_THREADS={v:?} is not 1 or 2; using {} (chosen for {cpus} CPUs)",
                    automatic_threads(cpus)
                );
                None
            }
            None => None,
        };
        Self {
            threads,
            busy_poll: logged(
                BusyPoll::limit_from(var("VINE_BUSY_POLL_US").as_deref()),
                defaults.busy_poll,
            ),
            stream_spin: logged(
                StreamSpin::limit_from(var("VINE_STREAM_SPIN_US").as_deref()),
                defaults.stream_spin,
            ),
            connected_sockets: Sockets::enabled_from(var("VINE_CONNECTED_SOCKETS").as_deref())
                .unwrap_or_else(|e| {
                    warn!("{e}");
                    true
                }),
            offload: var("VINE_OFFLOAD").is_none_or(|v| v != "0"),
            aead_ring: var("VINE_AEAD").is_some_and(|v| v == "ring"),
        }
    }
}

/// The CPUs this process may run on (1 when unknown).
pub(crate) fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The dataplane threads chosen for `cpus` CPUs when nothing overrides it.
pub(crate) fn automatic_threads(cpus: usize) -> usize {
    if cpus <= 2 { 1 } else { 2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> DataplaneTuning {
        DataplaneTuning::from_vars(|var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn unset_variables_give_the_defaults() {
        assert_eq!(with(&[]), DataplaneTuning::default());
    }

    #[test]
    fn overrides_are_applied_and_bad_values_keep_the_default() {
        let t = with(&[
            ("VINE_DATAPLANE_THREADS", "1"),
            ("VINE_BUSY_POLL_US", "0"),
            ("VINE_STREAM_SPIN_US", "50"),
            ("VINE_CONNECTED_SOCKETS", "0"),
            ("VINE_OFFLOAD", "0"),
            ("VINE_AEAD", "ring"),
        ]);
        assert_eq!(t.threads, Some(1));
        assert_eq!(t.busy_poll, Duration::ZERO);
        assert_eq!(t.stream_spin, Duration::from_micros(50));
        assert!(!t.connected_sockets);
        assert!(!t.offload);
        assert!(t.aead_ring);
        let bad = with(&[
            ("VINE_DATAPLANE_THREADS", "3"),
            ("VINE_BUSY_POLL_US", "fast"),
            ("VINE_CONNECTED_SOCKETS", "yes"),
            ("VINE_OFFLOAD", "1"),
            ("VINE_AEAD", "avx512"),
        ]);
        assert_eq!(bad, DataplaneTuning::default());
    }
}
