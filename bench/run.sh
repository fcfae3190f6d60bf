#!/usr/bin/env bash
# Side-by-side benchmark of vine against other userspace VPNs.
#
# For each implementation (vine, wireguard-go, boringtun-cli, nebula) this
# builds two fresh network namespaces vb-<impl>-a / vb-<impl>-b joined by a
# veth pair (underlay 192.0.2.1/24 <-> 192.0.2.2/24), brings the VPN up with
# overlay addresses 10.99.0.1 / 10.99.0.2, and measures over the overlay:
# iperf3 single stream, -P 4 and -R (10 s each), ping RTT (20 x 0.05 s),
# CPU seconds per GB of the VPN processes during the single-stream test,
# and their peak RSS. Prints a markdown table and writes bench/results.md
# and bench/results.json. Run as root: sudo bench/run.sh
#
# Every namespace and process started here is removed on exit (trap), by
# PID; nothing is ever killed by name. No traffic leaves the namespaces.
#
# Environment knobs:
#   VB_IMPLS="vine nebula"  run only these (default: vine wireguard-go
#                           boringtun-cli nebula baseline; baseline = the
#                           bare veth, no VPN, as a reference row)
#   VB_DURATION=10          iperf3 -t seconds
#   VB_SKIP_INSTALL=1       do not apt-get/cargo install anything
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
TOOLS="$BENCH/.tools"
read -ra IMPLS <<<"${VB_IMPLS:-vine wireguard-go boringtun-cli nebula baseline}"
DURATION="${VB_DURATION:-10}"
UNDER_A=192.0.2.1
UNDER_B=192.0.2.2
OVER_A=10.99.0.1
OVER_B=10.99.0.2

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ $EUID -ne 0 ]]; then
    echo "bench/run.sh must run as root (namespaces, TUN): sudo $0" >&2
    exit 1
fi

# ---------------------------------------------------------------- cleanup --
WORK="$(mktemp -d /tmp/vine-bench.XXXXXX)"
PIDS=()          # every background process we started (or daemon we own)
NAMESPACES=()    # every namespace we created
SOCKETS=()       # userspace WireGuard UAPI sockets created by our daemons
VINE_CONFIGS=()  # vine configs whose daemons we started

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

kill_pid() { # TERM, wait up to 5 s, then KILL; only the given PID
    local pid=$1 i
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? cfg pid ns s
    trap - EXIT INT TERM
    for cfg in "${VINE_CONFIGS[@]}"; do
        [[ -n "$cfg" ]] || continue
        timeout 10 "$ROOT/target/release/vine" daemon stop -c "$cfg" >/dev/null 2>&1 || true
    done
    for pid in "${PIDS[@]}"; do
        [[ -n "$pid" ]] && kill_pid "$pid"
    done
    for pid in "${PIDS[@]}"; do
        [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
    done
    for ns in "${NAMESPACES[@]}"; do
        [[ -n "$ns" ]] && ip netns del "$ns" 2>/dev/null || true
    done
    for s in "${SOCKETS[@]}"; do
        [[ -n "$s" ]] && rm -f "$s"
    done
    if [[ $rc -ne 0 && -z "${VB_KEEP_WORK:-}" ]]; then
        log "failed (exit $rc); logs kept in $WORK"
    elif [[ -z "${VB_KEEP_WORK:-}" ]]; then
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Remove one implementation's processes and namespaces (between runs).
PHASE_START_PIDS=0
teardown_impl() {
    local impl=$1 i cfg
    for cfg in "${VINE_CONFIGS[@]}"; do
        [[ -n "$cfg" ]] || continue
        timeout 10 "$ROOT/target/release/vine" daemon stop -c "$cfg" >/dev/null 2>&1 || true
    done
    VINE_CONFIGS=()
    for ((i = PHASE_START_PIDS; i < ${#PIDS[@]}; i++)); do
        kill_pid "${PIDS[i]}"
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    ip netns del "vb-$impl-a" 2>/dev/null || true
    ip netns del "vb-$impl-b" 2>/dev/null || true
    # Forget what is gone, so the exit trap never signals a reused PID.
    PIDS=("${PIDS[@]:0:PHASE_START_PIDS}")
}

# ---------------------------------------------------------------- install --
STATUS_DIR="$WORK/status"
mkdir -p "$STATUS_DIR"
unavailable() { echo "not available: $2" >"$STATUS_DIR/$1"; log "$1: not available: $2"; }

find_cargo() {
    if command -v cargo >/dev/null; then command -v cargo; return; fi
    local h
    for h in "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)}" "$HOME" /root; do
        [[ -n "$h" && -x "$h/.cargo/bin/cargo" ]] && { echo "$h/.cargo/bin/cargo"; return; }
    done
    return 1
}

install_deps() {
    local pkgs=() p
    command -v iperf3 >/dev/null || pkgs+=(iperf3)
    command -v ip >/dev/null || pkgs+=(iproute2)
    command -v ping >/dev/null || pkgs+=(iputils-ping)
    command -v python3 >/dev/null || pkgs+=(python3)
    command -v wg >/dev/null || pkgs+=(wireguard-tools)
    command -v wireguard-go >/dev/null || pkgs+=(wireguard-go)
    command -v nebula >/dev/null || pkgs+=(nebula)
    if ((${#pkgs[@]})) && [[ -z "${VB_SKIP_INSTALL:-}" ]]; then
        log "apt-get install ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        if ! apt-get install -y "${pkgs[@]}" >"$WORK/apt.log" 2>&1; then
            apt-get update >>"$WORK/apt.log" 2>&1 || true
            # One at a time, so one missing package does not sink the rest.
            for p in "${pkgs[@]}"; do
                apt-get install -y "$p" >>"$WORK/apt.log" 2>&1 || log "apt: $p failed to install"
            done
        fi
    fi
    for p in iperf3 ip ping python3; do
        command -v "$p" >/dev/null || { echo "required tool $p missing" >&2; exit 1; }
    done
    command -v wg >/dev/null || { unavailable wireguard-go "wg (wireguard-tools) missing"; unavailable boringtun-cli "wg (wireguard-tools) missing"; }
    command -v wireguard-go >/dev/null || unavailable wireguard-go "apt package wireguard-go not installable"
    { command -v nebula >/dev/null && command -v nebula-cert >/dev/null; } || unavailable nebula "apt package nebula not installable"

    CARGO="$(find_cargo)" || { echo "cargo not found (install rustup for root or run via sudo from a user with ~/.cargo)" >&2; exit 1; }
    # Build as the invoking user when run through sudo, so target/ stays theirs.
    local as_user=()
    if [[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]]; then
        as_user=(sudo -u "$SUDO_USER" -H env "PATH=$(dirname "$CARGO"):$PATH")
    fi
    BORINGTUN="$TOOLS/bin/boringtun-cli"
    if [[ ! -x "$BORINGTUN" && -z "${VB_SKIP_INSTALL:-}" && ! -e "$STATUS_DIR/boringtun-cli" ]]; then
        log "cargo install boringtun-cli --locked (into bench/.tools, first run only)"
        mkdir -p "$TOOLS"
        [[ ${#as_user[@]} -gt 0 ]] && chown "$SUDO_USER" "$TOOLS"
        "${as_user[@]}" "$CARGO" install boringtun-cli --locked --root "$TOOLS" >"$WORK/cargo-install.log" 2>&1 ||
            log "cargo install boringtun-cli failed (see $WORK/cargo-install.log)"
    fi
    [[ -x "$BORINGTUN" ]] || [[ -e "$STATUS_DIR/boringtun-cli" ]] || unavailable boringtun-cli "cargo install boringtun-cli failed"

    log "cargo build --release -p vine"
    (cd "$ROOT" && "${as_user[@]}" "$CARGO" build --release -p vine) >"$WORK/cargo-build.log" 2>&1 || {
        cat "$WORK/cargo-build.log" >&2
        echo "cargo build --release -p vine failed" >&2
        exit 1
    }
    VINE="$ROOT/target/release/vine"
}

# ---------------------------------------------------------------- helpers --
# Start a command in the background inside a namespace, track its PID.
# `ip netns exec` execs the program, so $! is the program itself.
LAST_PID=
spawn_in() { # ns logfile cmd...
    local ns=$1 logf=$2
    shift 2
    ip netns exec "$ns" "$@" >"$logf" 2>&1 </dev/null &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

make_namespaces() {
    local impl=$1 a="vb-$1-a" b="vb-$1-b"
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    ip netns add "$a"; NAMESPACES+=("$a")
    ip netns add "$b"; NAMESPACES+=("$b")
    ip link add vb-veth-a netns "$a" type veth peer name vb-veth-b netns "$b"
    ip -n "$a" addr add "$UNDER_A/24" dev vb-veth-a
    ip -n "$b" addr add "$UNDER_B/24" dev vb-veth-b
    ip -n "$a" link set lo up
    ip -n "$b" link set lo up
    ip -n "$a" link set vb-veth-a up
    ip -n "$b" link set vb-veth-b up
}

wait_ping() { # ns dst seconds
    local ns=$1 dst=$2 deadline=$((SECONDS + $3))
    while ((SECONDS < deadline)); do
        ip netns exec "$ns" ping -c1 -W1 "$dst" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

cpu_ticks() { # sum of utime+stime over the given PIDs (all threads)
    local t=0 pid f
    for pid in "$@"; do
        # Fields after the ")" of comm: state is $1, utime $12, stime $13.
        f=$(sed 's/^.*) //' "/proc/$pid/stat")
        t=$((t + $(awk '{print $12 + $13}' <<<"$f")))
    done
    echo "$t"
}

rss_hwm_kib() { # sum of VmHWM over the given PIDs
    local t=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# ------------------------------------------------------- implementations ---
# Each up_<impl> brings the VPN up in vb-<impl>-a/-b, sets VPN_PIDS to the
# VPN processes, and writes "$D/mtu" and "$D/version". Return non-zero with
# a reason in "$D/why" on failure.
VPN_PIDS=()

up_vine() {
    local D=$1 side ns addr cfg
    "$VINE" --version >"$D/version" 2>/dev/null || echo "vine (workspace)" >"$D/version"
    for side in a b; do
        ns="vb-vine-$side"
        [[ $side == a ]] && addr=$OVER_A || addr=$OVER_B
        mkdir -p "$D/$side"
        # Each node owns a prefix; /32 keeps both on 10.99.0.x like the others.
        ip netns exec "$ns" "$VINE" identity init --identity "$D/$side/identity" >>"$D/setup.log" 2>&1
        ip netns exec "$ns" "$VINE" config init -c "$D/$side/vine.toml" --identity "$D/$side/identity" \
            --name "$side" --network-id bench --address "$addr/32" --runtime-dir "$D/$side/run" >>"$D/setup.log" 2>&1
    done
    "$VINE" identity export-public -c "$D/b/vine.toml" >"$D/b.pub"
    "$VINE" identity export-public -c "$D/a/vine.toml" >"$D/a.pub"
    local peer_b
    peer_b=$("$VINE" identity export-public --format json -c "$D/b/vine.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])')
    { echo; cat "$D/b.pub"; printf '\n[[bootstrap_peers]]\npeer_id = "%s"\naddress = "udp://%s:4100"\n' "$peer_b" "$UNDER_B"; } >>"$D/a/vine.toml"
    { echo; cat "$D/a.pub"; } >>"$D/b/vine.toml"
    for side in a b; do
        "$VINE" config validate -c "$D/$side/vine.toml" >>"$D/setup.log" 2>&1 ||
            { echo "config validate failed ($side)" >"$D/why"; return 1; }
    done
    for side in b a; do
        cfg="$D/$side/vine.toml"
        VINE_CONFIGS+=("$cfg")
        ip netns exec "vb-vine-$side" "$VINE" daemon start -c "$cfg" >>"$D/setup.log" 2>&1 ||
            { echo "daemon start failed ($side)" >"$D/why"; return 1; }
        local pid
        pid=$(<"$D/$side/run/vine.pid")
        PIDS+=("$pid")
        VPN_PIDS+=("$pid")
    done
    ip -n vb-vine-a link show | awk '/vine0/ {for (i=1;i<=NF;i++) if ($i=="mtu") print $(i+1)}' | head -n1 >"$D/mtu" || true
}

down_vine() {
    local D=$1 side
    for side in a b; do
        cp "$D/$side/run/vine.log" "$D/vine-$side.log" 2>/dev/null || true
    done
}

# Shared by wireguard-go and boringtun-cli: both speak the UAPI socket in
# /var/run/wireguard/<ifname>.sock, which is NOT per-namespace, so the two
# sides use distinct interface names.
up_wg_common() { # D impl launcher...
    local D=$1 impl=$2
    shift 2
    local side ns ifn
    for side in a b; do
        (umask 077 && wg genkey >"$D/$side.key")
        wg pubkey <"$D/$side.key" >"$D/$side.pub"
    done
    mkdir -p /var/run/wireguard
    for side in a b; do
        ns="vb-$impl-$side"
        ifn="vbwg-$side"
        rm -f "/var/run/wireguard/$ifn.sock"
        SOCKETS+=("/var/run/wireguard/$ifn.sock")
        spawn_in "$ns" "$D/daemon-$side.log" "$@" "$ifn"
        VPN_PIDS+=("$LAST_PID")
    done
    for side in a b; do
        ns="vb-$impl-$side"
        ifn="vbwg-$side"
        local deadline=$((SECONDS + 10))
        until [[ -S "/var/run/wireguard/$ifn.sock" ]] && ip -n "$ns" link show "$ifn" >/dev/null 2>&1; do
            ((SECONDS < deadline)) || { echo "$ifn did not appear: $(tail -n 3 "$D/daemon-$side.log" | tr '\n' ' ')" >"$D/why"; return 1; }
            sleep 0.1
        done
    done
    # a: 10.99.0.1, listens 51820; b: 10.99.0.2, listens 51820.
    ip netns exec "vb-$impl-a" wg set vbwg-a listen-port 51820 private-key "$D/a.key" \
        peer "$(<"$D/b.pub")" endpoint "$UNDER_B:51820" allowed-ips "$OVER_B/32"
    ip netns exec "vb-$impl-b" wg set vbwg-b listen-port 51820 private-key "$D/b.key" \
        peer "$(<"$D/a.pub")" endpoint "$UNDER_A:51820" allowed-ips "$OVER_A/32"
    ip -n "vb-$impl-a" addr add "$OVER_A/24" dev vbwg-a
    ip -n "vb-$impl-b" addr add "$OVER_B/24" dev vbwg-b
    # What wg-quick would set (boringtun-cli leaves its TUN at 1500, which
    # would make every full-size packet fragment on the 1500-byte veth).
    ip -n "vb-$impl-a" link set vbwg-a mtu 1420
    ip -n "vb-$impl-b" link set vbwg-b mtu 1420
    ip -n "vb-$impl-a" link set vbwg-a up
    ip -n "vb-$impl-b" link set vbwg-b up
    ip -n "vb-$impl-a" link show vbwg-a | awk '{for (i=1;i<=NF;i++) if ($i=="mtu") print $(i+1)}' | head -n1 >"$D/mtu"
}

up_wireguard-go() {
    local D=$1
    echo "wireguard-go $(wireguard-go --version 2>/dev/null | awk 'NR==1 {print $2}')" >"$D/version"
    WG_PROCESS_FOREGROUND=1 up_wg_common "$D" wireguard-go wireguard-go
}
down_wireguard-go() { :; }

up_boringtun-cli() {
    local D=$1
    echo "$("$BORINGTUN" --version 2>/dev/null | head -n1)" >"$D/version"
    # --disable-drop-privileges (= WG_SUDO=1): stay root so the UAPI socket
    # stays reachable; --foreground logs to stdout instead of /tmp.
    up_wg_common "$D" boringtun-cli "$BORINGTUN" --foreground --disable-drop-privileges
}
down_boringtun-cli() { :; }

up_nebula() {
    local D=$1 side ns addr peer_over peer_under
    echo "nebula $(nebula -version 2>/dev/null | awk '{print $2}')" >"$D/version"
    (cd "$D" && nebula-cert ca -name vine-bench -duration 24h >>"$D/setup.log" 2>&1) ||
        { echo "nebula-cert ca failed" >"$D/why"; return 1; }
    for side in a b; do
        [[ $side == a ]] && addr=$OVER_A || addr=$OVER_B
        (cd "$D" && nebula-cert sign -name "$side" -ip "$addr/24" -out-crt "$side.crt" -out-key "$side.key") >>"$D/setup.log" 2>&1 ||
            { echo "nebula-cert sign failed" >"$D/why"; return 1; }
    done
    for side in a b; do
        if [[ $side == a ]]; then peer_over=$OVER_B peer_under=$UNDER_B; else peer_over=$OVER_A peer_under=$UNDER_A; fi
        cat >"$D/$side.yml" <<EOF
pki:
  ca: $D/ca.crt
  cert: $D/$side.crt
  key: $D/$side.key
static_host_map:
  "$peer_over": ["$peer_under:4242"]
lighthouse:
  am_lighthouse: $([[ $side == b ]] && echo true || echo false)
  interval: 60
  hosts: []
listen:
  host: 0.0.0.0
  port: 4242
punchy:
  punch: false
relay:
  use_relays: false
tun:
  disabled: false
  dev: nebula-$side
  drop_local_broadcast: false
  drop_multicast: false
  tx_queue: 500
logging:
  level: info
  format: text
firewall:
  outbound:
    - port: any
      proto: any
      host: any
  inbound:
    - port: any
      proto: any
      host: any
EOF
    done
    for side in b a; do
        ns="vb-nebula-$side"
        nebula -config "$D/$side.yml" -test >>"$D/setup.log" 2>&1 ||
            { echo "nebula -test rejected config: $(tail -n 2 "$D/setup.log" | tr '\n' ' ')" >"$D/why"; return 1; }
        spawn_in "$ns" "$D/daemon-$side.log" nebula -config "$D/$side.yml"
        VPN_PIDS+=("$LAST_PID")
    done
    local deadline=$((SECONDS + 10))
    until ip -n vb-nebula-a link show nebula-a >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "nebula-a did not appear: $(tail -n 3 "$D/daemon-a.log" | tr '\n' ' ')" >"$D/why"; return 1; }
        sleep 0.1
    done
    ip -n vb-nebula-a link show nebula-a | awk '{for (i=1;i<=NF;i++) if ($i=="mtu") print $(i+1)}' | head -n1 >"$D/mtu"
}
down_nebula() { :; }

# Reference row: no VPN at all, the same addresses put straight on the veth.
up_baseline() {
    local D=$1
    echo "veth, no VPN" >"$D/version"
    ip -n vb-baseline-a addr add "$OVER_A/24" dev vb-veth-a
    ip -n vb-baseline-b addr add "$OVER_B/24" dev vb-veth-b
    echo 1500 >"$D/mtu"
}
down_baseline() { :; }

# ------------------------------------------------------------- measuring ---
iperf() { # D name extra-args...
    local D=$1 name=$2
    shift 2
    # Bounded: a stuck tunnel must not hang the run. Run in the background
    # and `wait`, so INT/TERM reach the trap at once instead of after iperf3.
    local pid rc=0
    timeout $((DURATION + 30)) ip netns exec "vb-$IMPL-a" \
        iperf3 -c "$OVER_B" -t "$DURATION" -J --connect-timeout 5000 "$@" >"$D/$name.json" 2>"$D/$name.err" </dev/null &
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || rc=$?
    unset 'PIDS[-1]'
    if ((rc)); then
        log "$IMPL: iperf3 $name failed (exit $rc)"
        return 1
    fi
}

bench_impl() {
    local impl=$1
    local D="$WORK/$impl"
    IMPL=$impl
    mkdir -p "$D"
    if [[ -e "$STATUS_DIR/$impl" ]]; then
        cp "$STATUS_DIR/$impl" "$D/status"
        return 0
    fi
    log "$impl: namespaces"
    PHASE_START_PIDS=${#PIDS[@]}
    VPN_PIDS=()
    make_namespaces "$impl"
    log "$impl: bringing the tunnel up"
    if ! "up_$impl" "$D"; then
        echo "failed: $(cat "$D/why" 2>/dev/null || echo "setup error, see logs")" >"$D/status"
        teardown_impl "$impl"
        return 0
    fi
    if ! wait_ping "vb-$impl-a" "$OVER_B" 30; then
        echo "failed: no ping over the overlay within 30 s" >"$D/status"
        "down_$impl" "$D" || true
        teardown_impl "$impl"
        return 0
    fi
    wait_ping "vb-$impl-b" "$OVER_A" 10 || true
    log "$impl: up (pids ${VPN_PIDS[*]}); measuring"

    spawn_in "vb-$impl-b" "$D/iperf3-server.log" iperf3 -s -B "$OVER_B"
    local deadline=$((SECONDS + 10))
    until ip netns exec "vb-$impl-b" ss -ltn 2>/dev/null | grep -q ":5201 "; do
        ((SECONDS < deadline)) || break
        sleep 0.1
    done

    # Warm-up: handshake done, caches hot (not recorded).
    ip netns exec "vb-$impl-a" ping -c 3 -i 0.1 -q "$OVER_B" >/dev/null 2>&1 || true

    local ok=1 t0 t1
    t0=$(cpu_ticks "${VPN_PIDS[@]}")
    iperf "$D" tcp1 || ok=0
    t1=$(cpu_ticks "${VPN_PIDS[@]}")
    if ((${#VPN_PIDS[@]})); then
        echo $((t1 - t0)) >"$D/cpu_ticks"
        getconf CLK_TCK >"$D/clk_tck"
    fi
    sleep 1
    iperf "$D" tcp4 -P 4 || ok=0
    sleep 1
    iperf "$D" rev -R || ok=0
    ip netns exec "vb-$impl-a" ping -c 20 -i 0.05 -q "$OVER_B" >"$D/ping.txt" 2>&1 || true
    ((${#VPN_PIDS[@]} == 0)) || rss_hwm_kib "${VPN_PIDS[@]}" >"$D/rss_kib"
    local p
    for p in "${VPN_PIDS[@]}"; do alive "$p" || ok=0; done
    if ((ok)); then
        echo ok >"$D/status"
    else
        echo "failed: measurement error (VPN process died or iperf3 failed)" >"$D/status"
    fi
    "down_$impl" "$D" || true
    teardown_impl "$impl"
    log "$impl: done ($(<"$D/status"))"
}

# ------------------------------------------------------------------ main ---
install_deps
for impl in "${IMPLS[@]}"; do
    case $impl in
        vine | wireguard-go | boringtun-cli | nebula | baseline) bench_impl "$impl" ;;
        *) echo "unknown implementation $impl" >&2; exit 1 ;;
    esac
done

python3 "$BENCH/report.py" "$WORK" "$BENCH/results.json" "$BENCH/results.md" "${IMPLS[@]}"
[[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]] && chown "$SUDO_USER" "$BENCH/results.json" "$BENCH/results.md" || true
cat "$BENCH/results.md"
