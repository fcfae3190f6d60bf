#!/usr/bin/env python3
"""Turn the raw files of one bench/run.sh run into results.json and results.md.

usage: report.py WORKDIR RESULTS_JSON RESULTS_MD IMPL...

WORKDIR/<impl>/run<k>/ (k = 1..VB_REPEAT) holds: status ("ok", "failed: ...",
"not available: ..."), tcp1.json / tcp4.json / rev.json (iperf3 -J), ping.txt,
cpu_ticks, clk_tck, rss_kib (VmHWM of each VPN process, one per line), mtu,
version, settings (what a variant changes), udp_before / udp_after ("rb tb
drops" of the namespaces' UDP sockets).

Each metric of a row is the median over its successful runs. Rows named vine*
are vine; every other row except baseline is a peer. For each metric the best
peer is found and each vine row is compared with it, and with the goals of
the performance issue (reported, never enforced).
"""

import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys

# metric key -> (label, higher is better)
METRICS = {
    "tcp1_gbps": ("TCP 1-stream Gbit/s", True),
    "tcp_p4_gbps": ("TCP -P4 Gbit/s", True),
    "reverse_gbps": ("reverse Gbit/s", True),
    "cpu_s_per_gb": ("CPU s/GB", False),
    "ping_median_ms": ("ping ms", False),
}
GOAL_FACTOR = 5.0
GOAL_RSS_MIB = 32.0


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def iperf(path):
    """(Gbit/s, bytes) received, from an iperf3 -J client report."""
    try:
        with open(path) as f:
            j = json.load(f)
    except (OSError, ValueError):
        return None, None
    if "error" in j:
        return None, None
    s = j.get("end", {}).get("sum_received") or {}
    if "bits_per_second" not in s:
        return None, None
    return s["bits_per_second"] / 1e9, s.get("bytes")


def ping_stats(path):
    """(median RTT, mean RTT, loss %) from `ping` output with per-reply lines.

    The median is what the table shows: a few scheduler outliers on a
    shared 2-core VM move the mean by more than the differences measured.
    """
    text = read(path, "")
    times = sorted(float(t) for t in re.findall(r"time=([\d.]+) ms", text))
    m = re.search(r"= [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms", text)
    loss = re.search(r"([\d.]+)% packet loss", text)
    median = None
    if times:
        n = len(times)
        median = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
    return (
        median,
        float(m.group(1)) if m else None,
        float(loss.group(1)) if loss else None,
    )


def udp(path):
    """(largest rcvbuf, largest sndbuf, drops) from a udp_* file, or Nones."""
    parts = (read(path) or "").split()
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None, None, None
    return tuple(int(p) for p in parts)


def collect_run(d):
    status = read(os.path.join(d, "status"), "failed: no result")
    settings = read(os.path.join(d, "settings"))
    r = {
        "status": status,
        "version": read(os.path.join(d, "version")),
        "settings": "; ".join(settings.splitlines()) if settings else None,
    }
    if status != "ok":
        return r
    g1, bytes1 = iperf(os.path.join(d, "tcp1.json"))
    g4, _ = iperf(os.path.join(d, "tcp4.json"))
    gr, _ = iperf(os.path.join(d, "rev.json"))
    median, avg, loss = ping_stats(os.path.join(d, "ping.txt"))
    ticks = read(os.path.join(d, "cpu_ticks"))
    hz = read(os.path.join(d, "clk_tck"), "100")
    cpu_s = int(ticks) / int(hz) if ticks is not None else None
    cpu_per_gb = cpu_s / (bytes1 / 1e9) if cpu_s is not None and bytes1 else None
    rss = [int(v) / 1024 for v in (read(os.path.join(d, "rss_kib")) or "").split() if v.isdigit()]
    mtu = read(os.path.join(d, "mtu"))
    rb, tb, _ = udp(os.path.join(d, "udp_before"))
    _, _, drops_after = udp(os.path.join(d, "udp_after"))
    _, _, drops_before = udp(os.path.join(d, "udp_before"))
    r.update(
        {
            "tcp1_gbps": g1,
            "tcp1_bytes": bytes1,
            "tcp_p4_gbps": g4,
            "reverse_gbps": gr,
            "ping_median_ms": median,
            "ping_avg_ms": avg,
            "ping_loss_pct": loss,
            "cpu_seconds_tcp1": cpu_s,
            "cpu_s_per_gb": cpu_per_gb,
            "rss_mib": sum(rss) if rss else None,
            "rss_max_daemon_mib": max(rss) if rss else None,
            "mtu": int(mtu) if mtu and mtu.isdigit() else None,
            "udp_rcvbuf_bytes": rb,
            "udp_sndbuf_bytes": tb,
            "udp_rx_drops": drops_after - drops_before
            if drops_after is not None and drops_before is not None
            else None,
        }
    )
    return r


NUMERIC = [
    "tcp1_gbps",
    "tcp1_bytes",
    "tcp_p4_gbps",
    "reverse_gbps",
    "ping_median_ms",
    "ping_loss_pct",
    "cpu_seconds_tcp1",
    "cpu_s_per_gb",
    "rss_mib",
    "rss_max_daemon_mib",
    "mtu",
    "udp_rcvbuf_bytes",
    "udp_sndbuf_bytes",
    "udp_rx_drops",
]
# Counts and sizes: the median is one of the measured values.
INTEGRAL = {"tcp1_bytes", "mtu", "udp_rcvbuf_bytes", "udp_sndbuf_bytes", "udp_rx_drops"}


def collect(work, impl):
    base = os.path.join(work, impl)
    dirs = sorted(
        glob.glob(os.path.join(base, "run*")),
        key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0),
    )
    runs = [collect_run(d) for d in dirs]
    r = {"implementation": impl}
    if not runs:
        r.update({"status": "failed: no result", "version": None, "settings": None})
        return r
    ok = [x for x in runs if x["status"] == "ok"]
    first = ok[0] if ok else runs[0]
    r["status"] = "ok" if ok else first["status"]
    r["version"] = first.get("version")
    r["settings"] = first.get("settings")
    r["runs_total"] = len(runs)
    r["runs_ok"] = len(ok)
    for k in NUMERIC:
        vals = [x[k] for x in ok if x.get(k) is not None]
        if not vals:
            r[k] = None
        elif k in INTEGRAL:
            r[k] = statistics.median_low(vals)
        else:
            r[k] = statistics.median(vals)
    if len(runs) > 1:
        r["runs"] = [{k: v for k, v in x.items() if k not in ("version", "settings")} for x in runs]
    return r


def fmt(v, nd=2):
    return "–" if v is None else f"{v:.{nd}f}"


def is_vine(name):
    return name == "vine" or name.startswith("vine-")


def cores():
    pairs = set()
    phys = core = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":", 1)[1].strip()
                elif not line.strip():
                    if core is not None:
                        pairs.add((phys, core))
                    phys = core = None
        if core is not None:
            pairs.add((phys, core))
    except OSError:
        pass
    return len(pairs) or None


def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def best_peers(rows):
    peers = [r for r in rows if r["status"] == "ok" and not is_vine(r["implementation"]) and r["implementation"] != "baseline"]
    best = {}
    for key, (_, higher) in METRICS.items():
        cands = [r for r in peers if r.get(key) is not None]
        if not cands:
            best[key] = None
            continue
        b = max(cands, key=lambda r: r[key]) if higher else min(cands, key=lambda r: r[key])
        best[key] = {"implementation": b["implementation"], "value": b[key]}
    return best


def ratios_and_goals(rows, best):
    ratios, goals = {}, {}

    def val(key):
        return best[key]["value"] if best.get(key) else None

    for r in rows:
        name = r["implementation"]
        if not is_vine(name) or r["status"] != "ok":
            continue
        q = {}
        for key in ("tcp1_gbps", "tcp_p4_gbps", "reverse_gbps"):
            b, v = val(key), r.get(key)
            q[key.replace("_gbps", "")] = v / b if v is not None and b else None
        b, v = val("cpu_s_per_gb"), r.get("cpu_s_per_gb")
        q["cpu_best_over_vine"] = b / v if v and b is not None else None
        b, v = val("ping_median_ms"), r.get("ping_median_ms")
        q["ping_minus_best_ms"] = v - b if v is not None and b is not None else None
        ratios[name] = q

        def goal(value, met, target):
            return {"value": value, "target": target, "met": None if value is None else met}

        g = {
            "tcp1_5x": goal(q["tcp1"], q["tcp1"] is not None and q["tcp1"] >= GOAL_FACTOR, ">= 5x best peer"),
            "tcp_p4_5x": goal(q["tcp_p4"], q["tcp_p4"] is not None and q["tcp_p4"] >= GOAL_FACTOR, ">= 5x best peer"),
            "reverse_5x": goal(q["reverse"], q["reverse"] is not None and q["reverse"] >= GOAL_FACTOR, ">= 5x best peer"),
            "cpu_fifth": goal(
                q["cpu_best_over_vine"],
                q["cpu_best_over_vine"] is not None and q["cpu_best_over_vine"] >= GOAL_FACTOR,
                "CPU s/GB <= 1/5 of best peer (best ÷ vine >= 5)",
            ),
            "ping_le_best": goal(
                q["ping_minus_best_ms"],
                q["ping_minus_best_ms"] is not None and q["ping_minus_best_ms"] <= 0,
                "ping <= best peer (difference <= 0 ms)",
            ),
            "rss_each_daemon_lt_32mib": goal(
                r.get("rss_max_daemon_mib"),
                r.get("rss_max_daemon_mib") is not None and r["rss_max_daemon_mib"] < GOAL_RSS_MIB,
                "peak RSS of each daemon < 32 MiB",
            ),
        }
        g["all_met"] = all(x["met"] for x in g.values())
        goals[name] = g
    return ratios, goals


def yes_no(g, text):
    if g["met"] is None:
        return "? (no data)"
    return f"{'yes' if g['met'] else 'no'} ({text})"


def main():
    work, out_json, out_md, *impls = sys.argv[1:]
    rows = [collect(work, i) for i in impls]
    ref = next((r for r in rows if r["implementation"] == "vine" and r["status"] == "ok"), None) or next(
        (r for r in rows if is_vine(r["implementation"]) and r["status"] == "ok"), None
    )
    ref_name = ref["implementation"] if ref else "vine"
    vine = ref.get("tcp1_gbps") if ref else None
    for r in rows:
        t = r.get("tcp1_gbps")
        r["vine_over_this_tcp1"] = vine / t if vine and t else None

    best = best_peers(rows)
    ratios, goals = ratios_and_goals(rows, best)

    repeat = int(os.environ.get("VB_REPEAT", "1"))
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cores": cores(),
        "cpu_model": next(
            (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
            None,
        ),
        "iperf3_seconds": int(os.environ.get("VB_DURATION", "10")),
        "iperf3_version": tool_version(["iperf3", "--version"]),
        "repeat": repeat,
        "statistic": "median over successful runs" if repeat > 1 else "single run",
        "versions": {r["implementation"]: r.get("version") for r in rows},
        "vine_over_this_reference": ref_name,
    }
    with open(out_json, "w") as f:
        json.dump(
            {"meta": meta, "results": rows, "best_peer": best, "ratios": ratios, "goals": goals},
            f,
            indent=2,
        )
        f.write("\n")

    runs_note = f"median of {repeat} runs per row" if repeat > 1 else "one run per row"
    lines = [
        f"Measured {meta['date']} on {meta['cpus']} CPUs / {meta['cores'] or '?'} cores "
        f"({meta['cpu_model']}), kernel {meta['kernel']}; iperf3 -t {meta['iperf3_seconds']}, "
        f"{runs_note}; both ends and iperf3 share the same CPUs.",
        "",
        "| implementation | TCP 1-stream Gbit/s | TCP -P4 Gbit/s | reverse Gbit/s | ping ms "
        f"| CPU s/GB | RSS MiB | {ref_name} ÷ this (1-stream) | MTU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = r["implementation"]
        if r["status"] != "ok":
            lines.append(f"| {name} | {r['status']} | | | | | | | |")
            continue
        if r.get("runs_ok", 1) < r.get("runs_total", 1):
            name += f" ({r['runs_ok']}/{r['runs_total']} runs ok)"
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                name,
                fmt(r["tcp1_gbps"]),
                fmt(r["tcp_p4_gbps"]),
                fmt(r["reverse_gbps"]),
                fmt(r["ping_median_ms"], 3),
                fmt(r["cpu_s_per_gb"]),
                fmt(r["rss_mib"], 1),
                fmt(r["vine_over_this_tcp1"]),
                r["mtu"] if r["mtu"] else "–",
            )
        )

    variants = [f"{r['implementation']}: {r['settings']}" for r in rows if r.get("settings")]
    if variants:
        lines += ["", "Variants — " + "; ".join(variants) + "."]
    udp = [
        f"{r['implementation']} {r['udp_rcvbuf_bytes'] / 1048576:.2f} MiB / {r['udp_rx_drops']}"
        for r in rows
        if r["status"] == "ok" and r.get("udp_rcvbuf_bytes") is not None and r.get("udp_rx_drops") is not None
    ]
    if udp:
        lines += ["", "UDP receive buffer (largest, as `ss -m` shows it) / datagrams dropped on receive during the tests — "
                  + "; ".join(udp) + "."]
    by_version = {}
    for r in rows:
        if r.get("version"):
            by_version.setdefault(r["version"], []).append(r["implementation"])
    if by_version:
        lines += ["", "Versions — " + "; ".join(f"{v} ({', '.join(n)})" for v, n in by_version.items())
                  + (f"; {meta['iperf3_version']}" if meta["iperf3_version"] else "") + "."]

    lines += ["", "### vine against the best peer", ""]
    if not any(best.values()):
        lines.append("No peer row succeeded: no best peer to compare with.")
    else:
        lines.append(
            "Best peer per metric (every row except vine* and baseline): "
            + "; ".join(
                f"{label}: {b['implementation']} ({fmt(b['value'], 3 if key == 'ping_median_ms' else 2)})"
                if b
                else f"{label}: –"
                for key, (label, _) in METRICS.items()
                for b in [best[key]]
            )
            + "."
        )
    if ratios:
        lines += [
            "",
            "| vine row | 1-stream ÷ best | -P4 ÷ best | reverse ÷ best | best CPU s/GB ÷ vine "
            "| ping − best ms | max daemon RSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, q in ratios.items():
            r = next(x for x in rows if x["implementation"] == name)
            ping = q["ping_minus_best_ms"]
            lines.append(
                "| {} | {} | {} | {} | {} | {} | {} |".format(
                    name,
                    fmt(q["tcp1"]),
                    fmt(q["tcp_p4"]),
                    fmt(q["reverse"]),
                    fmt(q["cpu_best_over_vine"]),
                    "–" if ping is None else f"{ping:+.3f}",
                    fmt(r.get("rss_max_daemon_mib"), 1),
                )
            )
        lines += [
            "",
            "Goals of the performance issue (reported, not enforced):",
            "",
            "| vine row | 1-stream ≥ 5× | -P4 ≥ 5× | reverse ≥ 5× | CPU ≤ 1/5 | ping ≤ best peer "
            "| RSS < 32 MiB each daemon | all |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, g in goals.items():
            q = ratios[name]
            ping = q["ping_minus_best_ms"]
            lines.append(
                "| {} | {} | {} | {} | {} | {} | {} | {} |".format(
                    name,
                    yes_no(g["tcp1_5x"], f"{fmt(q['tcp1'])}×"),
                    yes_no(g["tcp_p4_5x"], f"{fmt(q['tcp_p4'])}×"),
                    yes_no(g["reverse_5x"], f"{fmt(q['reverse'])}×"),
                    yes_no(g["cpu_fifth"], f"{fmt(1 / q['cpu_best_over_vine']) if q['cpu_best_over_vine'] else '–'}× best"),
                    yes_no(g["ping_le_best"], "–" if ping is None else f"{ping:+.3f} ms"),
                    yes_no(g["rss_each_daemon_lt_32mib"], f"max {fmt(g['rss_each_daemon_lt_32mib']['value'], 1)} MiB"),
                    "yes" if g["all_met"] else "no",
                )
            )
    else:
        lines += ["", "No vine row succeeded: no ratios or goals."]
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
