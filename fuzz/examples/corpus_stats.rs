//! Summarizes what a config_parse corpus reaches: how many inputs yield a
//! config, how many are in fields mode, and which diagnostic codes appear (a
//! semantic complement to libFuzzer's edge coverage).
//!
//! Run from `fuzz/`: `cargo run --release --example corpus_stats -- corpus/config_parse seeds/config_parse`.

use std::collections::BTreeMap;
use std::fs;

use vine_core::config;

fn main() -> std::io::Result<()> {
    let mut inputs = 0usize;
    let mut with_config = 0usize;
    let mut fields = 0usize;
    let mut codes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for dir in std::env::args().skip(1) {
        for entry in fs::read_dir(&dir)? {
            let bytes = fs::read(entry?.path())?;
            let parsed = config::parse(&vine_fuzz::config_text(&bytes));
            inputs += 1;
            fields += usize::from(bytes.first() == Some(&0));
            with_config += usize::from(parsed.config.is_some());
            for d in &parsed.diagnostics {
                *codes.entry(d.code).or_default() += 1;
            }
        }
    }
    println!("{inputs} inputs ({fields} in fields mode), {with_config} yield a config");
    for (code, n) in &codes {
        println!("{n:>8}  {code}");
    }
    Ok(())
}
