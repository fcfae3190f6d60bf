//! Every fuzz target's body over its committed seeds, its regression
//! inputs, and deterministic pseudo-random inputs (random bytes and
//! mutations of the seeds), so `cargo test` exercises what `cargo fuzz`
//! runs. Counts are per target, sized to take a few seconds in a debug
//! build.

use std::fs;
use std::path::{Path, PathBuf};

/// Inputs per target beyond its seeds: cheap parsers get thousands, the
/// node-level targets (a fresh node with real handshakes per input) fewer.
fn budget(target: &str) -> usize {
    match target {
        "node_session" | "dataplane_batch" => 150,
        "control_json" => 300,
        "wg_decrypt" => 400,
        "config_parse" => 1000,
        _ => 3000,
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none when it is missing).
fn files(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            let bytes = fs::read(e.path()).expect("seed files are readable");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

/// xorshift64*: a fixed sequence, the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The `i`-th pseudo-random input: random bytes, or a seed with a few
/// bytes changed, inserted, removed, or cut short.
fn input(rng: &mut Rng, seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    if seeds.is_empty() || rng.below(4) == 0 {
        let len = rng.below(300);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut d = seeds[rng.below(seeds.len())].1.clone();
    for _ in 0..1 + rng.below(6) {
        match rng.below(5) {
            0 | 1 if !d.is_empty() => {
                let at = rng.below(d.len());
                d[at] ^= 1 << rng.below(8);
            }
            2 if !d.is_empty() => {
                let at = rng.below(d.len());
                d[at] = rng.next() as u8;
            }
            3 => {
                let at = rng.below(d.len() + 1);
                d.insert(at, rng.next() as u8);
            }
            _ if !d.is_empty() => {
                let at = rng.below(d.len());
                if rng.below(2) == 0 {
                    d.truncate(at);
                } else {
                    d.remove(at);
                }
            }
            _ => {}
        }
    }
    d
}

fn run(target: &str) {
    let (_, body) = vine_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let seeds = files("seeds", target);
    assert!(!seeds.is_empty(), "fuzz/seeds/{target}/ has no seeds");
    for (name, bytes) in seeds.iter().chain(&files("regressions", target)) {
        eprintln!("{target}: {name}");
        body(bytes);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for _ in 0..budget(target) {
        let d = input(&mut rng, &seeds);
        body(&d);
    }
}

#[test]
fn every_target_has_a_test_and_a_fuzz_binary() {
    let listed: Vec<&str> = vine_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for name in &listed {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "{name} has no [[bin]] in fuzz/Cargo.toml"
        );
        let src = fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")))
            .expect("a target file per body");
        assert!(
            src.contains(&format!("vine_fuzz::{name}(")),
            "{name}.rs runs its body"
        );
    }
    assert_eq!(
        manifest.matches("[[bin]]").count(),
        listed.len(),
        "every fuzz binary is in vine_fuzz::TARGETS"
    );
}

macro_rules! target_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name));
            }
        )*
    };
}

target_tests!(
    config_parse,
    identity_parse,
    frame_decode,
    wg_decrypt,
    tun_offload,
    aead_diff,
    node_session,
    dataplane_batch,
    netlink_reply,
    udp_cmsg,
    control_json,
);

/// The committed seeds of the program-shaped targets are what
/// `vine_fuzz::seeds` builds (`fuzz/examples/gen_seeds.rs` writes them;
/// `VINE_WRITE_SEEDS=1` makes this test write them instead).
#[test]
fn generated_seeds_are_committed() {
    let write = std::env::var_os("VINE_WRITE_SEEDS").is_some();
    for (target, name, bytes) in vine_fuzz::seeds::all() {
        let path = fuzz_dir().join("seeds").join(target).join(name);
        if write {
            fs::create_dir_all(path.parent().expect("a seed directory")).expect("mkdir");
            fs::write(&path, &bytes).expect("write seed");
        }
        let committed = fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} is stale: run `cd fuzz && cargo run --example gen_seeds`",
            path.display()
        );
    }
}
