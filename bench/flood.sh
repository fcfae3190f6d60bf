#!/usr/bin/env bash
# vine under a handshake flood (issue 15's "Flood" figures).
#
# Builds four network namespaces: a switch (vbf-sw, a bridge) and three
# hosts on it, vbf-a and vbf-b running vine daemons (underlay
# 198.51.100.1 / .2, overlay 10.98.0.1 / 10.98.1.1) and the attacker vbf-x
# (198.51.100.3). Then, each for VF_DURATION seconds:
#
#   1. baseline: iperf3 single stream a -> b over the overlay;
#   2. flood: the same while vbf-x sends b forged handshake initiations with
#      a valid mac1 (vine-flood --peer-id <b>) at VF_RATE/s from VF_PORTS
#      source ports;
#   3. junk: the same while vbf-x sends b 64 KiB random datagrams at
#      VF_JUNK_RATE/s.
#
# Reports per phase: throughput (Gbit/s, and the ratio to the baseline),
# the attacked daemon's CPU seconds, its Diffie-Hellman operations per second
# (`handshake_dh_computed` from `vine counters`), cookie replies sent, the
# datagrams dropped inline or at a full queue, and its peak RSS (VmHWM).
# Prints a markdown table; writes it and the raw numbers to $WORK.
# Run as root: sudo bench/flood.sh
#
# Every namespace and process started here is removed on exit (trap), by
# PID; nothing is killed by name. No traffic leaves the namespaces.
#
# Environment knobs:
#   VF_DURATION=30      seconds per phase (iperf3 -t)
#   VF_RATE=20000       forged initiations per second
#   VF_PORTS=256        attacker source ports
#   VF_JUNK_RATE=2000   64 KiB junk datagrams per second
#   VF_VINE=path        vine binary (default: target/release/vine, built)
#   VF_FLOOD=path       vine-flood binary (default: target/release/vine-flood)
#   VF_KEEP_WORK=1      keep the work directory /tmp/vine-flood.*
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
DURATION="${VF_DURATION:-30}"
RATE="${VF_RATE:-20000}"
PORTS="${VF_PORTS:-256}"
JUNK_RATE="${VF_JUNK_RATE:-2000}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VINE="${VF_VINE:-$TARGET_DIR/release/vine}"
FLOOD="${VF_FLOOD:-$TARGET_DIR/release/vine-flood}"
UNDER_A=198.51.100.1
UNDER_B=198.51.100.2
UNDER_X=198.51.100.3
OVER_A=10.98.0.1
OVER_B=10.98.1.1
NS_SW=vbf-sw NS_A=vbf-a NS_B=vbf-b NS_X=vbf-x

log() { printf '[flood %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "bench/flood.sh: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (network namespaces): sudo bench/flood.sh"
for tool in ip iperf3 ping python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install iproute2 iperf3 iputils-ping python3)"
done
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 5 ]] || die "VF_DURATION=$DURATION: give whole seconds, at least 5"

# ---------------------------------------------------------------- cleanup --
WORK="$(mktemp -d /tmp/vine-flood.XXXXXX)"
PIDS=()
NAMESPACES=()

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
    local pid ns
    for pid in "${PIDS[@]}"; do kill_pid "$pid"; done
    for ns in "${NAMESPACES[@]}"; do
        # Anything still inside (by PID), then the namespace.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill_pid "$pid"; done
        ip netns del "$ns" 2>/dev/null || true
    done
    if [[ -n "${VF_KEEP_WORK:-}" ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build --
if [[ -z "${VF_VINE:-}" || -z "${VF_FLOOD:-}" ]]; then
    log "cargo build --release -p vine -p vine-lab (vine, vine-flood)"
    (cd "$ROOT" && cargo build --release -p vine -p vine-lab --bin vine --bin vine-flood) \
        >"$WORK/cargo-build.log" 2>&1 || { tail -n 30 "$WORK/cargo-build.log" >&2; die "cargo build failed"; }
fi
[[ -x $VINE ]] || die "no vine binary at $VINE"
[[ -x $FLOOD ]] || die "no vine-flood binary at $FLOOD"

# ----------------------------------------------------------------- set up --
add_ns() {
    ip netns del "$1" 2>/dev/null || true
    ip netns add "$1"
    NAMESPACES+=("$1")
    ip -n "$1" link set lo up
}

add_ns "$NS_SW"
ip -n "$NS_SW" link add br0 type bridge
ip -n "$NS_SW" link set br0 up
for pair in "$NS_A:$UNDER_A:a" "$NS_B:$UNDER_B:b" "$NS_X:$UNDER_X:x"; do
    IFS=: read -r ns addr tag <<<"$pair"
    add_ns "$ns"
    ip link add "vbf-$tag" netns "$ns" type veth peer name "vbf-s$tag" netns "$NS_SW"
    ip -n "$NS_SW" link set "vbf-s$tag" master br0 up
    ip -n "$ns" addr add "$addr/24" dev "vbf-$tag"
    ip -n "$ns" link set "vbf-$tag" up
done

vine_in() { # side args... (the side's namespace and config)
    local side=$1
    shift
    ip netns exec "vbf-$side" "$VINE" "$@" -c "$WORK/$side/vine.toml"
}

for side in a b; do
    [[ $side == a ]] && addr=$OVER_A || addr=$OVER_B
    mkdir -p "$WORK/$side"
    ip netns exec "vbf-$side" "$VINE" identity init --identity "$WORK/$side/identity" >>"$WORK/setup.log" 2>&1
    ip netns exec "vbf-$side" "$VINE" config init -c "$WORK/$side/vine.toml" --identity "$WORK/$side/identity" \
        --name "$side" --network-id flood-bench --address "$addr/24" --runtime-dir "$WORK/$side/run" >>"$WORK/setup.log" 2>&1
done
PEER_B=$("$VINE" identity export-public --format json -c "$WORK/b/vine.toml" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["peer_id"])')
{ echo; "$VINE" identity export-public -c "$WORK/b/vine.toml"; printf '\n[[bootstrap_peers]]\npeer_id = "%s"\naddress = "udp://%s:4100"\n' "$PEER_B" "$UNDER_B"; } >>"$WORK/a/vine.toml"
{ echo; "$VINE" identity export-public -c "$WORK/a/vine.toml"; } >>"$WORK/b/vine.toml"
for side in b a; do
    vine_in "$side" daemon start >>"$WORK/setup.log" 2>&1 || die "daemon start failed ($side); see $WORK/setup.log"
    PIDS+=("$(<"$WORK/$side/run/vine.pid")")
done
PID_B=$(<"$WORK/b/run/vine.pid")

deadline=$((SECONDS + 30))
until ip netns exec "$NS_A" ping -c1 -W1 "$OVER_B" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "no ping over the overlay within 30 s"
    sleep 0.2
done
ip netns exec "$NS_B" iperf3 -s -B "$OVER_B" >"$WORK/iperf3-server.log" 2>&1 </dev/null &
PIDS+=("$!")
deadline=$((SECONDS + 10))
until ip netns exec "$NS_B" ss -ltn 2>/dev/null | grep -q ":5201 "; do
    ((SECONDS < deadline)) || die "iperf3 server did not start"
    sleep 0.1
done
ip netns exec "$NS_A" ping -c 3 -i 0.1 -q "$OVER_B" >/dev/null 2>&1 || true
log "up: daemons a=${PIDS[1]} b=$PID_B; $("$VINE" --version 2>/dev/null || echo vine)"

# -------------------------------------------------------------- measuring --
cpu_ticks() { # utime+stime of a PID (all threads)
    # Fields after the ")" of comm: state is $1, utime $12, stime $13.
    sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
counters() { vine_in b counters --format json; }

phase() { # name flood-args... (none: no flood)
    local name=$1
    shift
    local D="$WORK/$name" fpid='' t0 t1
    mkdir -p "$D"
    if (($#)); then
        ip netns exec "$NS_X" "$FLOOD" --target "$UNDER_B:4100" --bind "$UNDER_X" --ports "$PORTS" \
            --seconds $((DURATION + 4)) "$@" >"$D/flood.json" 2>"$D/flood.err" </dev/null &
        fpid=$!
        PIDS+=("$fpid")
        sleep 2
    fi
    counters >"$D/counters_before.json"
    t0=$(cpu_ticks "$PID_B")
    log "$name: iperf3 -t $DURATION"
    timeout $((DURATION + 30)) ip netns exec "$NS_A" iperf3 -c "$OVER_B" -t "$DURATION" -J \
        --connect-timeout 5000 >"$D/iperf.json" 2>"$D/iperf.err" </dev/null || log "$name: iperf3 failed"
    t1=$(cpu_ticks "$PID_B")
    counters >"$D/counters_after.json"
    ip netns exec "$NS_A" ping -n -c 20 -i 0.05 "$OVER_B" >"$D/ping.txt" 2>&1 || true
    echo $((t1 - t0)) >"$D/cpu_ticks"
    awk '/^VmHWM:/ {print $2}' "/proc/$PID_B/status" >"$D/rss_kib"
    if [[ -n $fpid ]]; then
        wait "$fpid" || log "$name: vine-flood exited with an error: $(cat "$D/flood.err")"
    fi
    alive "$PID_B" || die "the attacked daemon died during $name"
}

phase baseline
phase flood --peer-id "$PEER_B" --rate "$RATE"
phase junk --junk --rate "$JUNK_RATE"

# --------------------------------------------------------------- report ----
python3 - "$WORK" "$DURATION" "$(getconf CLK_TCK)" "$RATE" "$JUNK_RATE" "$PORTS" <<'EOF' | tee "$WORK/report.md"
import json, os, re, sys

work, duration, clk, rate, junk_rate, ports = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]

def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default

def total(m):
    return sum((m or {}).values())

rows = {}
for name in ["baseline", "flood", "junk"]:
    d = os.path.join(work, name)
    iperf = load(os.path.join(d, "iperf.json"), {})
    bps = iperf.get("end", {}).get("sum_received", {}).get("bits_per_second")
    before = load(os.path.join(d, "counters_before.json"), {}).get("data", {})
    after = load(os.path.join(d, "counters_after.json"), {}).get("data", {})
    flood = load(os.path.join(d, "flood.json"))
    ping = open(os.path.join(d, "ping.txt")).read() if os.path.exists(os.path.join(d, "ping.txt")) else ""
    m = re.search(r"= [\d.]+/([\d.]+)/", ping)
    lost = re.search(r"(\d+)% packet loss", ping)
    delta = lambda k: after.get(k, 0) - before.get(k, 0)
    rows[name] = {
        "gbps": bps / 1e9 if bps else None,
        "cpu_s": int(open(os.path.join(d, "cpu_ticks")).read()) / clk,
        "dh_per_s": delta("handshake_dh_computed") / duration,
        "cookies_per_s": delta("cookie_replies_sent") / duration,
        "inline_per_s": (total(after.get("inline_drops")) - total(before.get("inline_drops"))) / duration,
        "queue_full_per_s": (total(after.get("queue_drops")) - total(before.get("queue_drops"))) / duration,
        "rss_mib": int(open(os.path.join(d, "rss_kib")).read()) / 1024,
        "ping_ms": float(m.group(1)) if m else None,
        "ping_loss": lost.group(1) + " %" if lost else "?",
        "sent_per_s": flood["rate"] if flood else 0,
        "peak_handshake_queue": after.get("queue_peak_bytes", {}).get("handshake", 0),
    }
base = rows["baseline"]["gbps"]
fmt = lambda v, f="{:.2f}": "–" if v is None else f.format(v)
print(f"vine under a flood: {duration} s per phase, attacker {ports} source ports; "
      f"forged initiations at {rate}/s, junk (65,507-byte datagrams) at {junk_rate}/s\n")
print("| phase | attacker sent /s | TCP 1-stream Gbit/s | vs baseline | ping ms (loss) | b CPU s | b DH/s | cookie replies/s | inline drops/s | queue-full drops/s | b peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, r in rows.items():
    ratio = r["gbps"] / base if (base and r["gbps"]) else None
    print(f"| {name} | {r['sent_per_s']:.0f} | {fmt(r['gbps'])} | {fmt(ratio, '{:.0%}')} | "
          f"{fmt(r['ping_ms'], '{:.3f}')} ({r['ping_loss']}) | {r['cpu_s']:.1f} | {r['dh_per_s']:.2f} | "
          f"{r['cookies_per_s']:.0f} | {r['inline_per_s']:.0f} | {r['queue_full_per_s']:.0f} | {r['rss_mib']:.1f} |")
print(f"\nhandshake queue peak: {rows['junk']['peak_handshake_queue']} bytes (cap 262144)")
with open(os.path.join(work, "results.json"), "w") as f:
    json.dump(rows, f, indent=1)
EOF
