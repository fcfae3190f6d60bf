//! Transport AEAD speed, per backend, on packet-sized messages:
//! `cargo run --release -p vine-core --example aead_speed`.
//!
//! Prints Gbit/s of plaintext sealed and opened on one core for each size,
//! one message at a time, then in batches of 46 messages of 1408 bytes
//! (one TSO super-packet's segments at vine's default MTU), as the data
//! plane seals and opens them.

use std::time::Instant;

use vine_core::wg::aead::{AeadKey, Backend};

fn main() {
    println!("chosen backend: {}", Backend::detect().0.name());
    // AEAD_SPEED_ONLY=avx512:1408 (or ring:batch, ...) runs one case.
    let only = std::env::var("AEAD_SPEED_ONLY").ok();
    let skip = |b: Backend, case: &str| {
        only.as_deref()
            .is_some_and(|o| o != format!("{}:{case}", b.name()))
    };
    for size in [64usize, 576, 1408, 4096, 8960] {
        for b in [Backend::Ring, Backend::Avx512] {
            if skip(b, &size.to_string()) {
                continue;
            }
            let key = AeadKey::new(&[9; 32], b);
            let mut buf = vec![0x42u8; size + 16];
            let iters = (2_000_000_000 / size).max(1000);
            let start = Instant::now();
            for i in 0..iters as u64 {
                let tag = key.seal(i, &mut buf[..size]).expect("seal");
                std::hint::black_box(&tag);
            }
            let seal = start.elapsed().as_secs_f64();
            let tag = key.seal(u64::MAX >> 1, &mut buf[..size]).expect("seal");
            buf[size..].copy_from_slice(&tag);
            let start = Instant::now();
            let mut ok = 0;
            for _ in 0..iters {
                // Open (decrypting in place), then seal again to restore.
                ok += key.open(u64::MAX >> 1, &mut buf).is_ok() as usize;
                let tag = key.seal(u64::MAX >> 1, &mut buf[..size]).expect("seal");
                buf[size..].copy_from_slice(&tag);
            }
            let open_seal = start.elapsed().as_secs_f64();
            let gbit = |s: f64| (iters * size) as f64 * 8.0 / s / 1e9;
            // open = (open + seal) - seal
            let open = (open_seal - seal).max(1e-9);
            println!(
                "{size:>5} B  {:<6}  seal {:>6.2} Gbit/s  open {:>6.2} Gbit/s  (opened {ok})",
                b.name(),
                gbit(seal),
                gbit(open)
            );
        }
    }
    for b in [Backend::Ring, Backend::Avx512] {
        if skip(b, "batch") {
            continue;
        }
        let key = AeadKey::new(&[9; 32], b);
        let (size, count) = (1408usize, 46usize);
        let mut slots: Vec<Vec<u8>> = (0..count).map(|_| vec![0x42u8; size + 16]).collect();
        let rounds = 2_000_000_000 / (size * count);
        let start = Instant::now();
        for r in 0..rounds as u64 {
            key.seal_each(
                slots
                    .iter_mut()
                    .enumerate()
                    .map(|(i, s)| (r * 64 + i as u64, s.as_mut_slice())),
            );
        }
        let seal = start.elapsed().as_secs_f64();
        // Seal once more with known counters, then open and re-seal.
        let counter = |i: usize| 1 << 40 | i as u64;
        key.seal_each(
            slots
                .iter_mut()
                .enumerate()
                .map(|(i, s)| (counter(i), s.as_mut_slice())),
        );
        let mut ok = 0usize;
        let start = Instant::now();
        for _ in 0..rounds {
            key.open_each(
                slots
                    .iter_mut()
                    .enumerate()
                    .map(|(i, s)| (i, counter(i), s.as_mut_slice())),
                |_, good| ok += good as usize,
            );
            key.seal_each(
                slots
                    .iter_mut()
                    .enumerate()
                    .map(|(i, s)| (counter(i), s.as_mut_slice())),
            );
        }
        let open_seal = start.elapsed().as_secs_f64();
        let gbit = |s: f64| (rounds * size * count) as f64 * 8.0 / s / 1e9;
        println!(
            "{size:>5} B x{count} {:<6}  seal {:>6.2} Gbit/s  open {:>6.2} Gbit/s  (opened {ok})",
            b.name(),
            gbit(seal),
            gbit((open_seal - seal).max(1e-9))
        );
    }
}
