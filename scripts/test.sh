#!/usr/bin/env bash
# vine's full test suite: the command README.md documents and .ci/run runs.
# Installs what the tests need on a fresh Debian machine (run as root), then
# runs the format check, clippy with warnings denied, and every test of the
# workspace — network-namespace tests included, so it must run as root.
if [ "$(id -u)" != 0 ]; then
    echo "error: the test suite builds network namespaces and TUN devices; run it as root" >&2
    exit 1
fi
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v git >/dev/null 2>&1 || need+=(git)
# The layout check (scripts/check-layout.py).
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Network-namespace tests: `ip` (iproute2) builds the test hosts, `ping`
# checks the overlay end to end, `nft` (nftables) runs the NAT lab's routers,
# cuts and random loss.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The workload tests resolve overlay names with `dig` from inside workloads.
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
if ((${#need[@]})); then
    echo "== installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# Through sudo, root's PATH lacks the invoking user's rustup install: use
# that toolchain (root keeps its own cargo home for downloads), and give
# target/ back to the user afterwards when the checkout is theirs.
if ! command -v cargo >/dev/null 2>&1 && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -x "$home/.cargo/bin/cargo" ]; then
        export PATH="$home/.cargo/bin:$PATH" RUSTUP_HOME="${RUSTUP_HOME:-$home/.rustup}"
        if [ "$(stat -c %U .)" = "$SUDO_USER" ]; then
            trap 'chown -R "$SUDO_USER": target 2>/dev/null || true' EXIT
        fi
    fi
fi
command -v cargo >/dev/null 2>&1 || { echo "error: cargo not found; install Rust with rustup first" >&2; exit 1; }
for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" \
        || rustup component add "$component"
done

echo "== layout (no import circles, no file over 900 lines, vine-core pure)"
python3 scripts/check-layout.py
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test --workspace"
cargo test --workspace --locked
