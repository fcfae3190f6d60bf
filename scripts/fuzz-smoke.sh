#!/usr/bin/env bash
# Short fuzzing smoke run of vine-core's parsers (see fuzz/README.md).
#
#   scripts/fuzz-smoke.sh [SECONDS]      # per target, default 30
#
# Runs every cargo-fuzz target in fuzz/ for SECONDS, starting from the
# committed seeds in fuzz/seeds/<target>/ and replaying the known crashers in
# fuzz/regressions/<target>/ first. New corpus entries go to a scratch
# directory that is deleted afterwards, so the tree is left as it was.
# Exits non-zero as soon as a target crashes (the crashing input is saved in
# fuzz/artifacts/<target>/). Needs a stable toolchain only: cargo-fuzz's
# nightly flags are enabled with RUSTC_BOOTSTRAP=1. Installs cargo-fuzz if it
# is missing. Not part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS]   (a positive whole number; default 30)" >&2
    exit 2
fi

command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust with rustup first" >&2; exit 1; }
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
targets=(config_parse identity_parse frame_decode wg_decrypt tun_offload aead_diff node_session dataplane_batch netlink_reply udp_cmsg control_json)

echo "== building fuzz targets"
cargo fuzz build

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for target in "${targets[@]}"; do
    seeds="fuzz/seeds/$target"
    regressions="fuzz/regressions/$target"
    flags=(-max_total_time="$seconds" -print_final_stats=1)
    if [[ -f "fuzz/dicts/$target.dict" ]]; then
        flags+=(-dict="$PWD/fuzz/dicts/$target.dict")
    fi

    if [[ -d "$regressions" ]] && compgen -G "$regressions/*" >/dev/null; then
        echo "== $target: replaying $regressions"
        # Each file is run once; a panic is a failure.
        cargo fuzz run "$target" "$regressions"/* -- -runs=1
    fi

    echo "== $target: fuzzing for ${seconds}s from $seeds"
    mkdir -p "$scratch/$target"
    if ! cargo fuzz run "$target" "$scratch/$target" "$seeds" -- "${flags[@]}"; then
        echo "error: fuzz target $target crashed; the input is in fuzz/artifacts/$target/" >&2
        echo "       minimize it with: RUSTC_BOOTSTRAP=1 cargo fuzz tmin $target <artifact>" >&2
        exit 1
    fi
done
echo "== fuzz smoke run passed (${#targets[@]} targets, ${seconds}s each)"
