#!/usr/bin/env bash
# The first command of README.md: `sudo ./scripts/demo.sh [--no-pause]`.
#
# On a fresh Debian machine with Rust (rustup) installed: installs with apt
# what `vine demo` needs (iproute2 for the namespaces and veth links,
# nftables for the NAT routers and the cut, iputils-ping for the pings,
# build-essential when there is no C compiler for the crypto crates' build
# scripts), builds vine, and runs `vine demo` with the arguments given here.
#
# It builds in release mode: that is the binary an operator installs
# (README "Install") and the one bench/run.sh and scripts/netns-demo.sh use,
# so the build is done once for all of them; the demo's daemons then run
# the code that ships, not a debug build that is several times slower.
#
# `vine demo` builds network namespaces and removes every namespace, daemon
# and file it made when it ends, fails or gets Ctrl-C. Nothing leaves the
# namespaces. Run as root.
if [ "$(id -u)" != 0 ]; then
    echo "error: vine demo builds network namespaces, NAT routers and TUN devices; run: sudo $0 $*" >&2
    exit 1
fi
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
if ((${#need[@]})); then
    echo "== installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# cargo: root's own, or (through sudo) the invoking user's rustup install,
# which root's PATH does not include; when that user owns the checkout the
# build runs as them, so target/ stays theirs.
cargo=$(command -v cargo 2>/dev/null || true)
build=("$cargo")
if [ -z "$cargo" ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -x "$home/.cargo/bin/cargo" ]; then
        cargo="$home/.cargo/bin/cargo"
        if [ "$(stat -c %U .)" = "$SUDO_USER" ]; then
            build=(sudo -u "$SUDO_USER" -H env "PATH=$home/.cargo/bin:$PATH" "$cargo")
        else
            build=(env "RUSTUP_HOME=$home/.rustup" "$cargo")
        fi
    fi
fi
if [ -z "$cargo" ]; then
    echo "error: cargo not found; install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi

echo "== cargo build --release -p vine (a few minutes the first time)"
"${build[@]}" build --release --locked -p vine
echo "== vine demo $*"
exec ./target/release/vine demo "$@"
