#!/usr/bin/env python3
"""Turn the raw files of one bench/run.sh run into results.json and results.md.

usage: report.py WORKDIR RESULTS_JSON RESULTS_MD IMPL...

WORKDIR/<impl>/ holds: status ("ok", "failed: ...", "not available: ..."),
tcp1.json / tcp4.json / rev.json (iperf3 -J), ping.txt, cpu_ticks, clk_tck,
rss_kib, mtu, version.
"""

import datetime
import json
import os
import platform
import re
import sys


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


def ping_avg(path):
    text = read(path, "")
    m = re.search(r"= [\d.]+/([\d.]+)/[\d.]+/[\d.]+ ms", text)
    loss = re.search(r"([\d.]+)% packet loss", text)
    return (float(m.group(1)) if m else None, float(loss.group(1)) if loss else None)


def collect(work, impl):
    d = os.path.join(work, impl)
    status = read(os.path.join(d, "status"), "failed: no result")
    r = {"implementation": impl, "status": status, "version": read(os.path.join(d, "version"))}
    if status != "ok":
        return r
    g1, bytes1 = iperf(os.path.join(d, "tcp1.json"))
    g4, _ = iperf(os.path.join(d, "tcp4.json"))
    gr, _ = iperf(os.path.join(d, "rev.json"))
    avg, loss = ping_avg(os.path.join(d, "ping.txt"))
    ticks = read(os.path.join(d, "cpu_ticks"))
    hz = read(os.path.join(d, "clk_tck"), "100")
    cpu_s = int(ticks) / int(hz) if ticks is not None else None
    cpu_per_gb = cpu_s / (bytes1 / 1e9) if cpu_s is not None and bytes1 else None
    rss = read(os.path.join(d, "rss_kib"))
    mtu = read(os.path.join(d, "mtu"))
    r.update(
        {
            "tcp1_gbps": g1,
            "tcp1_bytes": bytes1,
            "tcp_p4_gbps": g4,
            "reverse_gbps": gr,
            "ping_avg_ms": avg,
            "ping_loss_pct": loss,
            "cpu_seconds_tcp1": cpu_s,
            "cpu_s_per_gb": cpu_per_gb,
            "rss_mib": int(rss) / 1024 if rss else None,
            "mtu": int(mtu) if mtu and mtu.isdigit() else None,
        }
    )
    return r


def fmt(v, nd=2):
    return "–" if v is None else f"{v:.{nd}f}"


def main():
    work, out_json, out_md, *impls = sys.argv[1:]
    rows = [collect(work, i) for i in impls]
    vine = next((r.get("tcp1_gbps") for r in rows if r["implementation"] == "vine"), None)
    for r in rows:
        t = r.get("tcp1_gbps")
        r["vine_over_this_tcp1"] = vine / t if vine and t else None

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": next(
            (l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
            None,
        ),
        "iperf3_seconds": int(os.environ.get("VB_DURATION", "10")),
    }
    with open(out_json, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=2)
        f.write("\n")

    lines = [
        f"Measured {meta['date']} on {meta['cpus']} CPUs ({meta['cpu_model']}), "
        f"kernel {meta['kernel']}; iperf3 -t {meta['iperf3_seconds']}, both ends and "
        "iperf3 share the same CPUs.",
        "",
        "| implementation | TCP 1-stream Gbit/s | TCP -P4 Gbit/s | reverse Gbit/s | ping ms "
        "| CPU s/GB | RSS MiB | vine ÷ this (1-stream) | MTU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = r["implementation"]
        if r["status"] != "ok":
            lines.append(f"| {name} | {r['status']} | | | | | | | |")
            continue
        lines.append(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                name,
                fmt(r["tcp1_gbps"]),
                fmt(r["tcp_p4_gbps"]),
                fmt(r["reverse_gbps"]),
                fmt(r["ping_avg_ms"], 3),
                fmt(r["cpu_s_per_gb"]),
                fmt(r["rss_mib"], 1),
                fmt(r["vine_over_this_tcp1"]),
                r["mtu"] if r["mtu"] else "–",
            )
        )
    versions = ", ".join(f"{r['implementation']}: {r['version']}" for r in rows if r.get("version"))
    if versions:
        lines += ["", f"Versions — {versions}."]
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
