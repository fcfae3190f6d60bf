//! `vine-flood`: sends forged handshake initiations with a valid mac1 for
//! a PeerId, or 64 KiB junk datagrams, at a rate from many source ports,
//! and prints what it sent as one line of JSON. For `bench/flood.sh`; run
//! it inside the attacker's network namespace.
//!
//! ```text
//! vine-flood --target 203.0.113.2:4100 --peer-id vn1… [--rate 20000]
//!            [--seconds 30] [--ports 256] [--bind 0.0.0.0] [--junk [BYTES]]
//! ```

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use vine_lab::flood::{Flood, FloodSpec, parse_args};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (spec, mode) = match parse_args(&args, seed()) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("vine-flood: {e}");
            return ExitCode::from(2);
        }
    };
    match run(spec) {
        Ok(report) => {
            println!("{}", report.to_json(mode));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vine-flood: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(spec: FloodSpec) -> std::io::Result<vine_lab::flood::FloodReport> {
    let flood = Flood::open(spec)?;
    Ok(flood.run(&AtomicBool::new(false)))
}

/// A seed from the OS (the time, if that fails: the bytes need not be secret).
fn seed() -> u64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}
