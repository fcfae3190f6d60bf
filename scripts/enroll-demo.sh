#!/usr/bin/env bash
# Two-node enrollment walkthrough, entirely in a temporary directory:
# identities, configs, exchange of `export-public` records, validation.
# Touches nothing outside its temp dir and sends no traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p vine
vine="$PWD/target/release/vine"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$work|\$WORK|g; s|$vine|vine|g"; "$@" 2>&1 | sed "s|$work|\$WORK|g"; }

for n in alpha:10.42.0.1 beta:10.42.1.1; do
    name=${n%%:*} addr=${n#*:}
    step "$name: create an identity and a config"
    run "$vine" identity init --identity "$work/$name/identity"
    run "$vine" config init -c "$work/$name/vine.toml" --identity "$work/$name/identity" \
        --name "$name" --network-id demo-net --address "$addr/24"
done

step "exchange public records (what operators paste into each other's allowlist)"
run "$vine" identity export-public -c "$work/beta/vine.toml"
"$vine" identity export-public -c "$work/beta/vine.toml" >> "$work/alpha/vine.toml"
"$vine" identity export-public -c "$work/alpha/vine.toml" >> "$work/beta/vine.toml"

step "validate both nodes"
run "$vine" config validate -c "$work/alpha/vine.toml"
run "$vine" config validate -c "$work/beta/vine.toml"

step "a typo and a placeholder are caught with line, column and fix"
sed -i 's/^prefix_len = 24/prefix_lenn = 24/; 0,/^peer_id = .*/s//peer_id = "beta"/' "$work/alpha/vine.toml"
run "$vine" config validate -c "$work/alpha/vine.toml" || echo "(exit code $?)"
