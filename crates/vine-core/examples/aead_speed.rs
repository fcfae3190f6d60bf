//! Transport AEAD speed, per backend, on packet-sized messages:
//! `cargo run --release -p vine-core --example aead_speed`.
//!
//! Prints Gbit/s of plaintext sealed and opened on one core for each size.

use std::time::Instant;

use vine_core::wg::aead::{AeadKey, Backend, backend};

fn main() {
    println!("chosen backend: {}", backend().name());
    let only = std::env::var("AEAD_SPEED_ONLY").ok(); // e.g. "avx512:1408"
    for size in [64usize, 576, 1408, 4096, 8960] {
        for b in [Backend::Ring, Backend::Avx512] {
            if only
                .as_deref()
                .is_some_and(|o| o != format!("{}:{size}", b.name()))
            {
                continue;
            }
            let key = AeadKey::with_backend(&[9; 32], b);
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
}
