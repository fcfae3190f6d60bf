//! An attacker for tests and benchmarks ([`Flood`]): forged WireGuard
//! handshake initiations with a *valid* mac1 for a target PeerId, or junk
//! datagrams of up to 64 KiB, sent at a given rate from many source ports.
//!
//! A PeerId is its node's X25519 public key and is published in configs,
//! so anyone can compute mac1 (`MAC(HASH("mac1----" ‖ public key),
//! message[..116])`, keyed BLAKE2s-128): a forged initiation passes the
//! responder's first check and costs it a Diffie-Hellman unless it limits
//! handshakes before that. Every other field of the initiation is random
//! (sender index, ephemeral key, encrypted static key and timestamp), so
//! no handshake can complete. mac2 is zero, as a sender without a cookie
//! sends it.
//!
//! The sockets are opened by [`Flood::open`] (inside the attacker's
//! namespace, e.g. through [`Lab::run_in`](crate::netns::Lab::run_in));
//! [`Flood::run`] then sends from any thread, paced in 1 ms steps, until
//! its duration has passed or its stop flag is set, and reports what it
//! sent ([`FloodReport`]). The `vine-flood` binary wraps it for
//! `bench/flood.sh`.
//!
//! Randomness comes from a xorshift generator seeded by the caller: the
//! bytes need to be unpredictable to the target, not secret.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::{Blake2s256, Blake2sMac};

/// Bytes of a handshake initiation.
pub const INITIATION_LEN: usize = 148;
/// Where mac1 starts in an initiation (everything before it is covered).
const INIT_MAC1: usize = 116;
/// The largest UDP payload over IPv4: the "64 KiB" junk datagram.
pub const MAX_JUNK: usize = 65_507;
/// Source ports a flood uses unless told otherwise.
pub const DEFAULT_PORTS: usize = 256;

/// What a flood sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Forged initiations whose mac1 is valid for the node whose static
    /// public key (PeerId) this is.
    Initiations {
        /// The target's X25519 public key.
        public_key: [u8; 32],
    },
    /// Random datagrams of `size` bytes (at most [`MAX_JUNK`]).
    Junk {
        /// Bytes per datagram.
        size: usize,
    },
}

/// A flood to send.
#[derive(Debug, Clone)]
pub struct FloodSpec {
    /// The target's UDP address.
    pub target: SocketAddrV4,
    /// What to send.
    pub payload: Payload,
    /// Datagrams per second (over all ports).
    pub rate: u64,
    /// How long to send.
    pub duration: Duration,
    /// Source ports to send from (one socket each, datagrams round robin).
    pub ports: usize,
    /// Local address to bind the sockets to.
    pub bind: Ipv4Addr,
    /// Seed of the random bytes.
    pub seed: u64,
}

/// What a flood sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FloodReport {
    /// Datagrams sent.
    pub sent: u64,
    /// Their bytes (UDP payload).
    pub bytes: u64,
    /// Sends that failed (e.g. the socket buffer was full).
    pub errors: u64,
    /// Source ports used.
    pub ports: usize,
    /// How long it sent.
    pub elapsed: Duration,
}

impl FloodReport {
    /// Datagrams per second actually sent.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line of JSON (for scripts).
    pub fn to_json(&self, mode: &str) -> String {
        format!(
            "{{\"mode\":\"{mode}\",\"sent\":{},\"bytes\":{},\"errors\":{},\"ports\":{},\"seconds\":{:.3},\"rate\":{:.0}}}",
            self.sent,
            self.bytes,
            self.errors,
            self.ports,
            self.elapsed.as_secs_f64(),
            self.rate()
        )
    }
}

/// A flood ready to send: its sockets are open.
#[derive(Debug)]
pub struct Flood {
    spec: FloodSpec,
    sockets: Vec<UdpSocket>,
}

impl Flood {
    /// Opens `spec.ports` UDP sockets on `spec.bind` (ephemeral ports) in
    /// the calling thread's network namespace.
    pub fn open(spec: FloodSpec) -> io::Result<Self> {
        if spec.ports == 0 {
            return Err(io::Error::other("a flood needs at least one source port"));
        }
        if let Payload::Junk { size } = spec.payload
            && !(1..=MAX_JUNK).contains(&size)
        {
            return Err(io::Error::other(format!(
                "junk datagrams are 1 to {MAX_JUNK} bytes, not {size}"
            )));
        }
        let sockets = (0..spec.ports)
            .map(|_| {
                let s = UdpSocket::bind(SocketAddrV4::new(spec.bind, 0))?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self { spec, sockets })
    }

    /// Sends for the spec's duration, or until `stop` is set.
    pub fn run(&self, stop: &AtomicBool) -> FloodReport {
        let mut rng = XorShift::new(self.spec.seed);
        let mut buf = match self.spec.payload {
            Payload::Initiations { .. } => vec![0; INITIATION_LEN],
            Payload::Junk { size } => vec![0; size],
        };
        let mac1_key = match &self.spec.payload {
            Payload::Initiations { public_key } => Some(mac1_key(public_key)),
            Payload::Junk { .. } => None,
        };
        let mut report = FloodReport {
            ports: self.sockets.len(),
            ..FloodReport::default()
        };
        let t0 = Instant::now();
        let mut next = 0usize;
        loop {
            let elapsed = t0.elapsed();
            if elapsed >= self.spec.duration || stop.load(Ordering::Relaxed) {
                report.elapsed = elapsed.min(self.spec.duration);
                return report;
            }
            let due = (self.spec.rate as u128 * elapsed.as_micros() / 1_000_000) as u64;
            while report.sent + report.errors < due {
                match &mac1_key {
                    Some(key) => forge_initiation(key, &mut rng, &mut buf),
                    None => rng.fill(&mut buf),
                }
                let socket = &self.sockets[next % self.sockets.len()];
                next = next.wrapping_add(1);
                match socket.send_to(&buf, self.spec.target) {
                    Ok(n) => {
                        report.sent += 1;
                        report.bytes += n as u64;
                    }
                    Err(_) => report.errors += 1,
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The usage line of `vine-flood`.
pub const USAGE: &str = "usage: vine-flood --target IP:PORT (--peer-id vn1… | --junk [BYTES]) [--rate PER_SECOND] [--seconds S] [--ports N] [--bind IP]";

/// Parses `vine-flood`'s arguments into a spec (random bytes from
/// `seed`) and the mode's name (`initiations` or `junk`).
pub fn parse_args(args: &[String], seed: u64) -> Result<(FloodSpec, &'static str), String> {
    let mut target = None;
    let mut payload = None;
    let mut spec = FloodSpec {
        target: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        payload: Payload::Junk { size: MAX_JUNK },
        rate: 20_000,
        duration: Duration::from_secs(30),
        ports: DEFAULT_PORTS,
        bind: Ipv4Addr::UNSPECIFIED,
        seed,
    };
    let mut it = args.iter().peekable();
    while let Some(flag) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs {what}\n{USAGE}"))
        };
        match flag.as_str() {
            "--target" => {
                let v = value("an IPv4 address and port, e.g. 203.0.113.2:4100")?;
                target = Some(
                    v.parse::<SocketAddrV4>()
                        .map_err(|e| format!("--target {v}: {e}; give IP:PORT"))?,
                );
            }
            "--peer-id" => {
                let v = value("the target's PeerId (vn1…)")?;
                let id = v
                    .parse::<vine_core::PeerId>()
                    .map_err(|e| format!("--peer-id: {e}"))?;
                payload = Some(Payload::Initiations {
                    public_key: *id.public_key(),
                });
            }
            "--junk" => {
                let size = match it.peek() {
                    Some(v) if !v.starts_with("--") => {
                        let v = it.next().map(String::as_str).unwrap_or_default();
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| (1..=MAX_JUNK).contains(n))
                            .ok_or_else(|| format!("--junk {v}: give 1 to {MAX_JUNK} bytes"))?
                    }
                    _ => MAX_JUNK,
                };
                payload = Some(Payload::Junk { size });
            }
            "--rate" => {
                let v = value("datagrams per second")?;
                spec.rate = v
                    .parse()
                    .map_err(|e| format!("--rate {v}: {e}; give datagrams per second"))?;
            }
            "--seconds" => {
                let v = value("a duration in seconds")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 86_400.0)
                    .ok_or_else(|| format!("--seconds {v}: give a positive number of seconds"))?;
                spec.duration = Duration::from_secs_f64(secs);
            }
            "--ports" => {
                let v = value("a number of source ports")?;
                spec.ports = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| format!("--ports {v}: give 1 to 10000 source ports"))?;
            }
            "--bind" => {
                let v = value("a local IPv4 address")?;
                spec.bind = v
                    .parse()
                    .map_err(|e| format!("--bind {v}: {e}; give an IPv4 address"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    spec.target = target.ok_or_else(|| format!("--target is required\n{USAGE}"))?;
    spec.payload =
        payload.ok_or_else(|| format!("give --peer-id (forged initiations) or --junk\n{USAGE}"))?;
    let mode = match spec.payload {
        Payload::Initiations { .. } => "initiations",
        Payload::Junk { .. } => "junk",
    };
    Ok((spec, mode))
}

/// `HASH("mac1----" ‖ public_key)`: the key of mac1 on messages to that
/// node.
pub fn mac1_key(public_key: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Blake2s256::default();
    Update::update(&mut hasher, b"mac1----");
    Update::update(&mut hasher, public_key);
    hasher.finalize_fixed().into()
}

/// `MAC(key, data)`: keyed BLAKE2s-128.
fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 16] {
    let mut mac = <Blake2sMac<U16> as KeyInit>::new_from_slice(key)
        .expect("BLAKE2s takes keys of up to 32 bytes and this one is 32");
    Update::update(&mut mac, data);
    mac.finalize_fixed().into()
}

/// Writes a forged initiation into `buf` (148 bytes): type 1, random
/// sender index, ephemeral key, encrypted static and timestamp, a valid
/// mac1 under `mac1_key`, zero mac2.
pub fn forge_initiation(mac1_key: &[u8; 32], rng: &mut XorShift, buf: &mut [u8]) {
    let buf = &mut buf[..INITIATION_LEN];
    buf[..4].copy_from_slice(&[1, 0, 0, 0]);
    rng.fill(&mut buf[4..INIT_MAC1]);
    let mac1 = mac(mac1_key, &buf[..INIT_MAC1]);
    buf[INIT_MAC1..INIT_MAC1 + 16].copy_from_slice(&mac1);
    buf[INIT_MAC1 + 16..].fill(0);
}

/// A xorshift64* generator: fast bytes for forged fields and junk.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1) ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests;
