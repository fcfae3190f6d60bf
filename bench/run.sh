#!/usr/bin/env bash
# Side-by-side benchmark of vine against other userspace VPNs.
#
# For each implementation (vine, wireguard-go, boringtun-cli, nebula and
# their variants, see below) this builds two fresh network namespaces
# vb-<impl>-a / vb-<impl>-b joined by a veth pair (underlay 192.0.2.1/24 <->
# 192.0.2.2/24), brings the VPN up with overlay addresses 10.99.0.1 /
# 10.99.0.2, and measures over the overlay: iperf3 single stream, -P 4 and -R
# (10 s each), ping RTT (20 x 0.05 s), CPU seconds per GB of the VPN
# processes during the single-stream test, and their peak RSS. Prints a
# markdown table, vine's ratios against the best peer per metric and the
# goals of the performance issue, and writes bench/results.md and
# bench/results.json. Run as root: sudo bench/run.sh
#
# Implementations: vine, wireguard-go, boringtun-cli, nebula, baseline (the
# bare veth, no VPN, a reference row), and variants named <base>-<mod>...:
#   -1t        boringtun-cli with one worker thread (--threads 1)
#   -8m        wireguard-go/boringtun-cli: net.core.{r,w}mem_{max,default} =
#              8 MiB for their namespaces (these sysctls are global on many
#              kernels: then they are raised on the host for that variant
#              only and restored afterwards, also by the exit trap);
#              nebula: listen.read_buffer/write_buffer = 8 MiB
#   -nooffload vine with VINE_OFFLOAD=0 in the daemon's environment
#
# Every namespace and process started here is removed on exit (trap), by
# PID; nothing is ever killed by name. No traffic leaves the namespaces.
#
# Environment knobs:
#   VB_IMPLS="vine nebula"  run only these (default: all of them, see
#                           DEFAULT_IMPLS below)
#   VB_DURATION=10          iperf3 -t seconds
#   VB_REPEAT=1             run each implementation N times (round-robin
#                           over the list) and report the median of each metric
#   VB_SKIP_INSTALL=1       do not apt-get/cargo install anything
#   VB_VINE=path            use this vine binary instead of building it
#   VB_BORINGTUN=path       use this boringtun-cli binary instead of
#                           bench/.tools/bin/boringtun-cli (no cargo install)
#   VB_KEEP_WORK=1          keep the work directory /tmp/vine-bench.*
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
TOOLS="$BENCH/.tools"
DEFAULT_IMPLS="vine vine-nooffload wireguard-go wireguard-go-8m boringtun-cli boringtun-cli-1t boringtun-cli-8m nebula nebula-8m baseline"
read -ra IMPLS <<<"${VB_IMPLS:-$DEFAULT_IMPLS}"
DURATION="${VB_DURATION:-10}"
REPEAT="${VB_REPEAT:-1}"
BIG_BUF=8388608 # 8 MiB, the socket buffer of the -8m variants
UNDER_A=192.0.2.1
UNDER_B=192.0.2.2
OVER_A=10.99.0.1
OVER_B=10.99.0.2

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# An implementation name is a base plus modifiers: boringtun-cli-1t-8m.
# Sets BASE, OPT_1T, OPT_8M, OPT_NOOFFLOAD; fails on an unknown name.
parse_impl() {
    local name=$1 b rest mod mods=()
    BASE='' OPT_1T=0 OPT_8M=0 OPT_NOOFFLOAD=0
    for b in wireguard-go boringtun-cli nebula baseline vine; do
        if [[ $name == "$b" || $name == "$b"-* ]]; then
            BASE=$b
            rest=${name#"$b"}
            break
        fi
    done
    [[ -n $BASE ]] || return 1
    rest=${rest#-}
    [[ -z $rest ]] || IFS=- read -ra mods <<<"$rest"
    for mod in "${mods[@]}"; do
        case $BASE:$mod in
            boringtun-cli:1t) ((OPT_1T == 0)) || return 1; OPT_1T=1 ;;
            wireguard-go:8m | boringtun-cli:8m | nebula:8m) ((OPT_8M == 0)) || return 1; OPT_8M=1 ;;
            vine:nooffload) ((OPT_NOOFFLOAD == 0)) || return 1; OPT_NOOFFLOAD=1 ;;
            *) return 1 ;;
        esac
    done
}

declare -A SEEN_IMPL=()
for impl in "${IMPLS[@]}"; do
    [[ -z "${SEEN_IMPL[$impl]:-}" ]] || { echo "implementation $impl listed twice in VB_IMPLS" >&2; exit 1; }
    SEEN_IMPL[$impl]=1
    parse_impl "$impl" || {
        echo "unknown implementation $impl (bases: vine wireguard-go boringtun-cli nebula baseline;" \
            "variants: boringtun-cli-1t, <wireguard-go|boringtun-cli|nebula>-8m, vine-nooffload)" >&2
        exit 1
    }
done
((${#IMPLS[@]})) || { echo "VB_IMPLS is empty" >&2; exit 1; }
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || { echo "VB_DURATION must be a positive integer" >&2; exit 1; }
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "VB_REPEAT must be a positive integer" >&2; exit 1; }

if [[ $EUID -ne 0 ]]; then
    echo "bench/run.sh must run as root (namespaces, TUN): sudo $0" >&2
    exit 1
fi

if [[ -n "${VB_VINE:-}" ]]; then
    [[ -x "$VB_VINE" && -f "$VB_VINE" ]] || { echo "VB_VINE=$VB_VINE is not an executable file" >&2; exit 1; }
    VINE="$(realpath "$VB_VINE")"
else
    VINE="$ROOT/target/release/vine"
fi
if [[ -n "${VB_BORINGTUN:-}" ]]; then
    [[ -x "$VB_BORINGTUN" && -f "$VB_BORINGTUN" ]] || { echo "VB_BORINGTUN=$VB_BORINGTUN is not an executable file" >&2; exit 1; }
    BORINGTUN="$(realpath "$VB_BORINGTUN")"
else
    BORINGTUN="$TOOLS/bin/boringtun-cli"
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

# Host sysctls changed for a -8m variant, as "key=old value", to put back.
SYSCTL_KEYS=(net.core.rmem_max net.core.wmem_max net.core.rmem_default net.core.wmem_default)
SYSCTL_SAVED=()

restore_sysctls() {
    local kv
    for kv in "${SYSCTL_SAVED[@]}"; do
        [[ -n "$kv" ]] || continue
        [[ "$(sysctl -n "${kv%%=*}" 2>/dev/null)" == "${kv#*=}" ]] && continue
        sysctl -qw "$kv" >/dev/null 2>&1 || true
        # sysctl(8) may exit 0 on a refused write: check.
        [[ "$(sysctl -n "${kv%%=*}" 2>/dev/null)" == "${kv#*=}" ]] || log "could not restore $kv"
    done
    SYSCTL_SAVED=()
}

cleanup() {
    local rc=$? cfg pid ns s
    trap - EXIT INT TERM
    for cfg in "${VINE_CONFIGS[@]}"; do
        [[ -n "$cfg" ]] || continue
        timeout 10 "$VINE" daemon stop -c "$cfg" >/dev/null 2>&1 || true
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
    restore_sysctls
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
        timeout 10 "$VINE" daemon stop -c "$cfg" >/dev/null 2>&1 || true
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
    # A -8m variant's host sysctls go back once its daemons are gone.
    restore_sysctls
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

    local want_vine=0 want_bt=0 i
    for i in "${IMPLS[@]}"; do
        parse_impl "$i"
        [[ $BASE == vine ]] && want_vine=1
        [[ $BASE == boringtun-cli ]] && want_bt=1
    done
    local need_build=0 need_install=0
    ((want_vine)) && [[ -z "${VB_VINE:-}" ]] && need_build=1
    ((want_bt)) && [[ -z "${VB_BORINGTUN:-}" && ! -x "$BORINGTUN" && -z "${VB_SKIP_INSTALL:-}" && ! -e "$STATUS_DIR/boringtun-cli" ]] && need_install=1
    local as_user=()
    if ((need_build || need_install)); then
        CARGO="$(find_cargo)" || { echo "cargo not found (install rustup for root or run via sudo from a user with ~/.cargo), or set VB_VINE / VB_BORINGTUN" >&2; exit 1; }
        # Build as the invoking user when run through sudo, so target/ stays theirs.
        if [[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]]; then
            as_user=(sudo -u "$SUDO_USER" -H env "PATH=$(dirname "$CARGO"):$PATH")
        fi
    fi
    if ((need_install)); then
        log "cargo install boringtun-cli --locked (into bench/.tools, first run only)"
        mkdir -p "$TOOLS"
        [[ ${#as_user[@]} -gt 0 ]] && chown "$SUDO_USER" "$TOOLS"
        "${as_user[@]}" "$CARGO" install boringtun-cli --locked --root "$TOOLS" >"$WORK/cargo-install.log" 2>&1 ||
            log "cargo install boringtun-cli failed (see $WORK/cargo-install.log)"
    fi
    if ((want_bt)) && [[ ! -x "$BORINGTUN" && ! -e "$STATUS_DIR/boringtun-cli" ]]; then
        unavailable boringtun-cli "boringtun-cli not installed (cargo install failed or VB_SKIP_INSTALL set)"
    fi

    if ((need_build)); then
        log "cargo build --release -p vine"
        (cd "$ROOT" && "${as_user[@]}" "$CARGO" build --release -p vine) >"$WORK/cargo-build.log" 2>&1 || {
            cat "$WORK/cargo-build.log" >&2
            echo "cargo build --release -p vine failed" >&2
            exit 1
        }
    elif ((want_vine)); then
        log "using vine binary $VINE (VB_VINE)"
    fi
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

track_ns() {
    local n
    for n in "${NAMESPACES[@]}"; do [[ $n == "$1" ]] && return 0; done
    NAMESPACES+=("$1")
}

make_namespaces() {
    local a="vb-$1-a" b="vb-$1-b"
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    ip netns add "$a"; track_ns "$a"
    ip netns add "$b"; track_ns "$b"
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

rss_hwm_kib() { # VmHWM of each given PID, one per line
    local pid v
    for pid in "$@"; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
        echo "${v:-0}"
    done
}

# UDP sockets of both namespaces as `ss` shows them (only the VPN daemons
# have UDP sockets there): "rb tb drops" = largest receive and send buffer
# (skmem rb/tb, bytes, what the kernel granted: twice a setsockopt value)
# and the sum of datagrams dropped on receive.
udp_sockets() { # impl
    local ns
    for ns in "vb-$1-a" "vb-$1-b"; do
        ip netns exec "$ns" ss -Hnuam 2>/dev/null || true
    done | awk '
        match($0, /skmem:\([^)]*\)/) {
            n = split(substr($0, RSTART + 6, RLENGTH - 7), f, ",")
            for (i = 1; i <= n; i++) {
                if (f[i] ~ /^rb[0-9]+$/ && substr(f[i], 3) + 0 > rb) rb = substr(f[i], 3) + 0
                if (f[i] ~ /^tb[0-9]+$/ && substr(f[i], 3) + 0 > tb) tb = substr(f[i], 3) + 0
                if (f[i] ~ /^d[0-9]+$/) d += substr(f[i], 2)
            }
            seen = 1
        }
        END { if (seen) print rb + 0, tb + 0, d + 0 }'
}

# -8m variants of the WireGuard peers: net.core.{r,w}mem_{max,default} =
# 8 MiB as seen from their namespaces, before the daemons open sockets.
# Per-namespace on kernels that have it; otherwise (read-only copies of the
# host's values in the namespace, as on 6.x) raised on the host, with the
# old values saved first so teardown_impl and the exit trap put them back.
raise_sockbuf_sysctls() { # D impl
    local D=$1 impl=$2 key ns kv mode=netns v
    SYSCTL_SAVED=()
    for key in "${SYSCTL_KEYS[@]}"; do
        v=$(sysctl -n "$key") || { echo "cannot read $key" >"$D/why"; return 1; }
        SYSCTL_SAVED+=("$key=$v")
    done
    # sysctl(8) may exit 0 on a refused write: read the value back.
    for ns in "vb-$impl-a" "vb-$impl-b"; do
        for key in "${SYSCTL_KEYS[@]}"; do
            ip netns exec "$ns" sysctl -qw "$key=$BIG_BUF" >/dev/null 2>&1 || true
            v=$(ip netns exec "$ns" sysctl -n "$key" 2>/dev/null) || v="?"
            [[ $v == "$BIG_BUF" ]] || mode=global
        done
    done
    # A namespace write that reached the host makes them global as well.
    for kv in "${SYSCTL_SAVED[@]}"; do
        [[ "$(sysctl -n "${kv%%=*}")" == "${kv#*=}" ]] || mode=global
    done
    if [[ $mode == global ]]; then
        for key in "${SYSCTL_KEYS[@]}"; do
            sysctl -qw "$key=$BIG_BUF" >/dev/null || { echo "cannot set $key=$BIG_BUF on the host" >"$D/why"; return 1; }
        done
        log "$impl: ${SYSCTL_KEYS[*]} are not per-namespace here: host set to $BIG_BUF for this variant (restored after it)"
        echo "net.core.{r,w}mem_{max,default}=$BIG_BUF (global sysctls on this kernel: set on the host for this row only, restored)" >>"$D/settings"
    else
        SYSCTL_SAVED=()
        echo "net.core.{r,w}mem_{max,default}=$BIG_BUF in both namespaces (per-namespace sysctls)" >>"$D/settings"
    fi
    for ns in "vb-$impl-a" "vb-$impl-b"; do
        for key in "${SYSCTL_KEYS[@]}"; do
            v=$(ip netns exec "$ns" sysctl -n "$key" 2>/dev/null) || v="?"
            [[ $v == "$BIG_BUF" ]] || { echo "$key is $v in $ns, not $BIG_BUF" >"$D/why"; return 1; }
        done
    done
}

# ------------------------------------------------------- implementations ---
# Each up_<base> brings the VPN up in vb-$IMPL-a/-b (IMPL is the row name,
# BASE and OPT_* its parsed form), sets VPN_PIDS to the VPN processes, and
# writes "$D/mtu", "$D/version" and, for a variant, "$D/settings". Return
# non-zero with a reason in "$D/why" on failure.
VPN_PIDS=()

up_vine() {
    local D=$1 side ns addr cfg
    local env_cmd=()
    "$VINE" --version >"$D/version" 2>/dev/null || echo "vine (workspace)" >"$D/version"
    if ((OPT_NOOFFLOAD)); then
        env_cmd=(env VINE_OFFLOAD=0)
        echo "VINE_OFFLOAD=0 in the daemon's environment (TUN/UDP offloads off)" >"$D/settings"
    fi
    for side in a b; do
        ns="vb-$IMPL-$side"
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
        ip netns exec "vb-$IMPL-$side" "${env_cmd[@]}" "$VINE" daemon start -c "$cfg" >>"$D/setup.log" 2>&1 ||
            { echo "daemon start failed ($side)" >"$D/why"; return 1; }
        local pid
        pid=$(<"$D/$side/run/vine.pid")
        PIDS+=("$pid")
        VPN_PIDS+=("$pid")
        if ((OPT_NOOFFLOAD)) && ! tr '\0' '\n' <"/proc/$pid/environ" | grep -qx 'VINE_OFFLOAD=0'; then
            echo "VINE_OFFLOAD=0 did not reach the daemon ($side, pid $pid)" >"$D/why"
            return 1
        fi
    done
    ip -n "vb-$IMPL-a" link show | awk '/vine0/ {for (i=1;i<=NF;i++) if ($i=="mtu") print $(i+1)}' | head -n1 >"$D/mtu" || true
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
up_wg_common() { # D launcher...
    local D=$1
    shift
    local side ns ifn
    if ((OPT_8M)); then
        raise_sockbuf_sysctls "$D" "$IMPL" || return 1
    fi
    for side in a b; do
        (umask 077 && wg genkey >"$D/$side.key")
        wg pubkey <"$D/$side.key" >"$D/$side.pub"
    done
    mkdir -p /var/run/wireguard
    for side in a b; do
        ns="vb-$IMPL-$side"
        ifn="vbwg-$side"
        rm -f "/var/run/wireguard/$ifn.sock"
        SOCKETS+=("/var/run/wireguard/$ifn.sock")
        spawn_in "$ns" "$D/daemon-$side.log" "$@" "$ifn"
        VPN_PIDS+=("$LAST_PID")
    done
    for side in a b; do
        ns="vb-$IMPL-$side"
        ifn="vbwg-$side"
        local deadline=$((SECONDS + 10))
        until [[ -S "/var/run/wireguard/$ifn.sock" ]] && ip -n "$ns" link show "$ifn" >/dev/null 2>&1; do
            ((SECONDS < deadline)) || { echo "$ifn did not appear: $(tail -n 3 "$D/daemon-$side.log" | tr '\n' ' ')" >"$D/why"; return 1; }
            sleep 0.1
        done
    done
    # a: 10.99.0.1, listens 51820; b: 10.99.0.2, listens 51820.
    ip netns exec "vb-$IMPL-a" wg set vbwg-a listen-port 51820 private-key "$D/a.key" \
        peer "$(<"$D/b.pub")" endpoint "$UNDER_B:51820" allowed-ips "$OVER_B/32"
    ip netns exec "vb-$IMPL-b" wg set vbwg-b listen-port 51820 private-key "$D/b.key" \
        peer "$(<"$D/a.pub")" endpoint "$UNDER_A:51820" allowed-ips "$OVER_A/32"
    ip -n "vb-$IMPL-a" addr add "$OVER_A/24" dev vbwg-a
    ip -n "vb-$IMPL-b" addr add "$OVER_B/24" dev vbwg-b
    # What wg-quick would set (boringtun-cli leaves its TUN at 1500, which
    # would make every full-size packet fragment on the 1500-byte veth).
    ip -n "vb-$IMPL-a" link set vbwg-a mtu 1420
    ip -n "vb-$IMPL-b" link set vbwg-b mtu 1420
    ip -n "vb-$IMPL-a" link set vbwg-a up
    ip -n "vb-$IMPL-b" link set vbwg-b up
    ip -n "vb-$IMPL-a" link show vbwg-a | awk '{for (i=1;i<=NF;i++) if ($i=="mtu") print $(i+1)}' | head -n1 >"$D/mtu"
}

up_wireguard-go() {
    local D=$1
    echo "wireguard-go $(wireguard-go --version 2>/dev/null | awk 'NR==1 {print $2}')" >"$D/version"
    WG_PROCESS_FOREGROUND=1 up_wg_common "$D" wireguard-go
}
down_wireguard-go() { :; }

up_boringtun-cli() {
    local D=$1 extra=()
    echo "$("$BORINGTUN" --version 2>/dev/null | head -n1)" >"$D/version"
    if ((OPT_1T)); then
        extra=(--threads 1)
        echo "--threads 1 (one worker thread; default 4)" >>"$D/settings"
    fi
    # --disable-drop-privileges (= WG_SUDO=1): stay root so the UAPI socket
    # stays reachable; --foreground logs to stdout instead of /tmp.
    up_wg_common "$D" "$BORINGTUN" --foreground --disable-drop-privileges "${extra[@]}"
}
down_boringtun-cli() { :; }

up_nebula() {
    local D=$1 side ns addr peer_over peer_under buffers=
    echo "nebula $(nebula -version 2>/dev/null | awk '{print $2}')" >"$D/version"
    if ((OPT_8M)); then
        # nebula sets these with SO_RCVBUFFORCE/SO_SNDBUFFORCE: no sysctl needed.
        buffers=$(printf '  read_buffer: %s\n  write_buffer: %s' "$BIG_BUF" "$BIG_BUF")
        echo "listen.read_buffer/write_buffer=$BIG_BUF" >"$D/settings"
    fi
    (cd "$D" && nebula-cert ca -name vine-bench -duration 24h >>"$D/setup.log" 2>&1) ||
        { echo "nebula-cert ca failed" >"$D/why"; return 1; }
    for side in a b; do
        [[ $side == a ]] && addr=$OVER_A || addr=$OVER_B
        (cd "$D" && nebula-cert sign -name "$side" -ip "$addr/24" -out-crt "$side.crt" -out-key "$side.key") >>"$D/setup.log" 2>&1 ||
            { echo "nebula-cert sign failed" >"$D/why"; return 1; }
    done
    for side in a b; do
        if [[ $side == a ]]; then peer_over=$OVER_B peer_under=$UNDER_B; else peer_over=$OVER_A peer_under=$UNDER_A; fi
        cat >"$D/$side.yml" <<YAML
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
$buffers
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
YAML
    done
    for side in b a; do
        ns="vb-$IMPL-$side"
        nebula -config "$D/$side.yml" -test >>"$D/setup.log" 2>&1 ||
            { echo "nebula -test rejected config: $(tail -n 2 "$D/setup.log" | tr '\n' ' ')" >"$D/why"; return 1; }
        spawn_in "$ns" "$D/daemon-$side.log" nebula -config "$D/$side.yml"
        VPN_PIDS+=("$LAST_PID")
    done
    local deadline=$((SECONDS + 10))
    until ip -n "vb-$IMPL-a" link show nebula-a >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "nebula-a did not appear: $(tail -n 3 "$D/daemon-a.log" | tr '\n' ' ')" >"$D/why"; return 1; }
        sleep 0.1
    done
    ip -n "vb-$IMPL-a" link show nebula-a | awk '{for (i=1;i<=NF;i++) if ($i=="mtu") print $(i+1)}' | head -n1 >"$D/mtu"
}
down_nebula() { :; }

# Reference row: no VPN at all, the same addresses put straight on the veth.
up_baseline() {
    local D=$1
    echo "veth, no VPN" >"$D/version"
    ip -n "vb-$IMPL-a" addr add "$OVER_A/24" dev vb-veth-a
    ip -n "vb-$IMPL-b" addr add "$OVER_B/24" dev vb-veth-b
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

bench_impl() { # impl run-number
    local impl=$1 run=$2
    local D="$WORK/$impl/run$run"
    IMPL=$impl
    parse_impl "$impl"
    mkdir -p "$D"
    if [[ -e "$STATUS_DIR/$BASE" ]]; then
        cp "$STATUS_DIR/$BASE" "$D/status"
        return 0
    fi
    local tag="$impl"
    ((REPEAT == 1)) || tag="$impl (run $run/$REPEAT)"
    log "$tag: namespaces"
    PHASE_START_PIDS=${#PIDS[@]}
    VPN_PIDS=()
    make_namespaces "$impl"
    log "$tag: bringing the tunnel up"
    if ! "up_$BASE" "$D"; then
        echo "failed: $(cat "$D/why" 2>/dev/null || echo "setup error, see logs")" >"$D/status"
        "down_$BASE" "$D" || true
        teardown_impl "$impl"
        log "$tag: $(<"$D/status")"
        return 0
    fi
    if ! wait_ping "vb-$impl-a" "$OVER_B" 30; then
        echo "failed: no ping over the overlay within 30 s" >"$D/status"
        "down_$BASE" "$D" || true
        teardown_impl "$impl"
        log "$tag: $(<"$D/status")"
        return 0
    fi
    wait_ping "vb-$impl-b" "$OVER_A" 10 || true
    log "$tag: up (pids ${VPN_PIDS[*]}); measuring"
    udp_sockets "$impl" >"$D/udp_before"

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
    ip netns exec "vb-$impl-a" ping -n -c 100 -i 0.02 "$OVER_B" >"$D/ping.txt" 2>&1 || true
    ((${#VPN_PIDS[@]} == 0)) || rss_hwm_kib "${VPN_PIDS[@]}" >"$D/rss_kib"
    udp_sockets "$impl" >"$D/udp_after"
    local p
    for p in "${VPN_PIDS[@]}"; do alive "$p" || ok=0; done
    if ((ok)); then
        echo ok >"$D/status"
    else
        echo "failed: measurement error (VPN process died or iperf3 failed)" >"$D/status"
    fi
    "down_$BASE" "$D" || true
    teardown_impl "$impl"
    log "$tag: done ($(<"$D/status"))"
}

# ------------------------------------------------------------------ main ---
install_deps
for ((run = 1; run <= REPEAT; run++)); do
    for impl in "${IMPLS[@]}"; do
        bench_impl "$impl" "$run"
    done
done

VB_REPEAT=$REPEAT VB_DURATION=$DURATION python3 "$BENCH/report.py" "$WORK" "$BENCH/results.json" "$BENCH/results.md" "${IMPLS[@]}"
[[ -n "${SUDO_USER:-}" && "$SUDO_USER" != root ]] && chown "$SUDO_USER" "$BENCH/results.json" "$BENCH/results.md" || true
cat "$BENCH/results.md"
