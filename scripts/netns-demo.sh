#!/usr/bin/env bash
# Two real vine nodes on one machine, in two network namespaces joined by a
# veth pair (underlay 192.0.2.0/24). Identities and configs are made with the
# CLI, the daemons are started, and traffic crosses the encrypted overlay.
# Run as root. Everything it creates (namespaces, processes, files) is removed
# on exit, also on Ctrl-C or failure. Traffic never leaves the namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: it creates network namespaces and TUN devices" >&2; exit 1; }
command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
command -v ping >/dev/null || { apt-get update -qq && apt-get install -y -qq iputils-ping; }
cargo build --release --quiet -p vine
vine="$PWD/target/release/vine"
work=$(mktemp -d)
tag="vd$$"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    ip netns del "$tag-a" 2>/dev/null || true
    ip netns del "$tag-b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
show() { printf '$ %s\n' "$*" | sed "s|$work|\$WORK|g; s|$vine|vine|g"; }

step "two hosts: $tag-a (192.0.2.1) and $tag-b (192.0.2.2) on one veth link"
ip netns add "$tag-a"; ip netns add "$tag-b"
ip link add "${tag}a" netns "$tag-a" type veth peer name "${tag}b" netns "$tag-b"
ip -n "$tag-a" addr add 192.0.2.1/24 dev "${tag}a"; ip -n "$tag-b" addr add 192.0.2.2/24 dev "${tag}b"
for ns in "$tag-a" "$tag-b"; do ip -n "$ns" link set lo up; done
ip -n "$tag-a" link set "${tag}a" up; ip -n "$tag-b" link set "${tag}b" up

for n in alpha:a:10.42.0.1 beta:b:10.42.1.1; do
    IFS=: read -r name side addr <<<"$n"
    step "$name: identity and config"
    show vine identity init --identity "$work/$name/identity"
    "$vine" identity init --identity "$work/$name/identity" | sed "s|$work|\$WORK|g"
    "$vine" config init -c "$work/$name/vine.toml" --identity "$work/$name/identity" \
        --name "$name" --network-id demo-net --address "$addr/24" --runtime-dir "$work/$name/run" >/dev/null
done
step "enroll each other (export-public), alpha bootstraps from beta"
"$vine" identity export-public -c "$work/beta/vine.toml" | tee -a "$work/alpha/vine.toml"
"$vine" identity export-public -c "$work/alpha/vine.toml" >> "$work/beta/vine.toml"
beta_id=$("$vine" identity export-public -c "$work/beta/vine.toml" --format json | sed -n 's/.*"peer_id": "\([^"]*\)".*/\1/p')
printf '\n[[bootstrap_peers]]\npeer_id = "%s"\naddress = "udp://192.0.2.2:4100"\n' "$beta_id" >> "$work/alpha/vine.toml"
"$vine" config validate -c "$work/alpha/vine.toml" | tail -1 | sed "s|$work|\$WORK|g"

step "start both daemons"
in_ns "$tag-b" "$vine" daemon start -c "$work/beta/vine.toml"; pids+=("$(cat "$work/beta/run/vine.pid")")
in_ns "$tag-a" "$vine" daemon start -c "$work/alpha/vine.toml"; pids+=("$(cat "$work/alpha/run/vine.pid")")
for _ in $(seq 100); do in_ns "$tag-a" ping -c1 -W1 10.42.1.1 >/dev/null 2>&1 && break; sleep 0.1; done

step "ping across the overlay (alpha 10.42.0.1 -> beta 10.42.1.1)"
in_ns "$tag-a" ping -c 3 -i 0.2 10.42.1.1
step "vine sessions / routes / ping on alpha"
in_ns "$tag-a" "$vine" sessions -c "$work/alpha/vine.toml"
in_ns "$tag-a" "$vine" routes -c "$work/alpha/vine.toml"
in_ns "$tag-a" "$vine" ping 10.42.1.1 -c "$work/alpha/vine.toml"
step "stop beta: alpha withdraws its route"
in_ns "$tag-b" "$vine" daemon stop -c "$work/beta/vine.toml"
sleep 0.5
in_ns "$tag-a" ip route show | grep -q 10.42.1.0/24 && echo "route still present" || echo "alpha no longer routes 10.42.1.0/24"
in_ns "$tag-a" "$vine" daemon stop -c "$work/alpha/vine.toml"
step "done; namespaces and files are removed on exit"
