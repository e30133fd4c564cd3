#!/usr/bin/python3
"""Encoder redundancy benchmark for nonstopd (run by `scripts/bench --only
encoders`; stdlib only).

1. Failover: a 1280x720 channel with two x264 instances, `active-active`
   then `active-passive`; a fault (`stall` or `error`) is injected into the
   primary at a fixed time. Measured per run, from nonstopd's log and from a
   UDP receiver of the channel's MPEG-TS output on 127.0.0.1:
   - detect: fault → `encoder failover` (the change-over decision);
   - first packet: fault → the first video packet that arrives after the
     change-over (what a viewer gets from the other encoder);
   - arrival gap: the longest gap between video packets around the fault;
   - PTS gap: the largest step between video PTS in the output.
2. CPU: the same channel without redundancy, then active-active (two
   encoders), each for a measured window; utime+stime of nonstopd from
   /proc, per second of wall time.

Prints markdown; `--json FILE` also writes the raw figures.
usage: bench-encoders.py [run] --nonstopd BIN [--quick] [--reps N] [--secs S] [--json FILE]
"""

import argparse
import datetime
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from benchlib import cpu_seconds, free_port, start_nonstopd as start, stop  # noqa: E402





class Receiver(threading.Thread):
    """Receives MPEG-TS over UDP; records (arrival, pts) of each video PES
    start (stream ids 0xE0-0xEF), found without parsing the PMT."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.video = []  # (arrival wall time, pts seconds)
        self.running = True

    def run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            now = time.time()
            for i in range(0, len(data) - 187, 188):
                pkt = data[i : i + 188]
                if pkt[0] != 0x47 or not pkt[1] & 0x40:
                    continue
                afc = (pkt[3] >> 4) & 3
                off = 4
                if afc in (2, 3):
                    off += 1 + pkt[4]
                if afc == 2 or off + 14 > 188:
                    continue
                pes = pkt[off:]
                if pes[0:3] != b"\x00\x00\x01" or not 0xE0 <= pes[3] <= 0xEF:
                    continue
                if not pes[7] & 0x80:
                    continue
                p = pes[9:14]
                pts = (
                    ((p[0] >> 1) & 7) << 30
                    | p[1] << 22
                    | (p[2] >> 1) << 15
                    | p[3] << 7
                    | p[4] >> 1
                )
                self.video.append((now, pts / 90000.0))

    def stop(self):
        self.running = False
        self.join(2)
        self.sock.close()


def log_time(line):
    t = line.split()[0]
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def config(dir_, port, redundancy, fault, at):
    faults = f'faults = [{{ kind = "{fault}", instance = "primary", at = "{at}s" }}]' if fault else ""
    return f"""
[[channel]]
id = "bench"
video = {{ width = 1280, height = 720, framerate = 25 }}

[[channel.input]]
id = "cam"
uri = "test://ball?label=BENCH"

[[channel.encoder]]
id = "video"
preset = "ultrafast"
video_bitrate = 3000
keyframe_interval = "1s"
redundancy = "{redundancy}"
stall_timeout = "1s"
{faults}

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:{port}"
"""


def failover_run(binary, mode, fault, at):
    with tempfile.TemporaryDirectory(prefix="nonstop-bench-enc-") as d:
        port = free_port()
        rx = Receiver(port)
        rx.start()
        proc, log = start(binary, d, config(d, port, mode, fault, at))
        time.sleep(at + 5)
        stop(proc)
        rx.stop()
        log.close()
        lines = open(os.path.join(d, "log")).read().splitlines()
    fault_at = next((log_time(l) for l in lines if "injecting a fault" in l), None)
    over = next((log_time(l) for l in lines if "encoder failover" in l), None)
    if fault_at is None or over is None:
        return {"mode": mode, "fault": fault, "error": "no fault or no failover in the log"}
    v = rx.video
    after = [a for a, _ in v if a >= over]
    first = (after[0] - fault_at) if after else None
    around = [a for a, _ in v if fault_at - 2 <= a <= fault_at + 6]
    gaps = [b - a for a, b in zip(around, around[1:])]
    pts = sorted(p for _, p in v)
    steps = [b - a for a, b in zip(pts, pts[1:])]
    handed = next((re.search(r"handed_over=(\d+)", l) for l in lines if "encoder failover" in l), None)
    return {
        "mode": mode,
        "fault": fault,
        "detect_ms": round((over - fault_at) * 1000),
        "first_packet_ms": round(first * 1000) if first is not None else None,
        "arrival_gap_ms": round(max(gaps) * 1000) if gaps else None,
        "pts_gap_ms": round(max(steps) * 1000) if steps else None,
        "handed_over": int(handed.group(1)) if handed else None,
        "frames": len(v),
    }




def cpu_run(binary, mode, secs):
    with tempfile.TemporaryDirectory(prefix="nonstop-bench-enc-") as d:
        port = free_port()
        rx = Receiver(port)
        rx.start()
        proc, log = start(binary, d, config(d, port, mode, None, 0))
        time.sleep(4)  # warm-up
        c0, t0 = cpu_seconds(proc.pid), time.time()
        n0 = len(rx.video)
        time.sleep(secs)
        c1, t1 = cpu_seconds(proc.pid), time.time()
        n1 = len(rx.video)
        stop(proc)
        rx.stop()
        log.close()
    return {"mode": mode, "cpu": (c1 - c0) / (t1 - t0), "fps": (n1 - n0) / (t1 - t0)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "run":  # as scripts/bench calls it
        del sys.argv[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nonstopd", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=float, default=15)
    ap.add_argument("--json")
    a = ap.parse_args()
    reps = 1 if a.quick else a.reps
    secs = 5 if a.quick else a.secs
    results = {"failover": [], "cpu": []}
    for _ in range(reps):
        for mode, fault in [("active-active", "stall"), ("active-active", "error"), ("active-passive", "stall"), ("active-passive", "error")]:
            r = failover_run(a.nonstopd, mode, fault, 5)
            print("bench-encoders:", r, file=sys.stderr)
            results["failover"].append(r)
    for _ in range(reps):
        for mode in ["none", "active-active"]:
            r = cpu_run(a.nonstopd, mode, secs)
            print("bench-encoders:", r, file=sys.stderr)
            results["cpu"].append(r)

    print("#### Encoder failover (1280x720 at 25 fps, x264 ultrafast, keyframe every 1 s, stall_timeout 1 s)\n")
    print("| mode | fault | runs | detect (ms) | first packet after (ms) | longest arrival gap (ms) | largest PTS step (ms) | frames handed over |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    keys = []
    for r in results["failover"]:
        k = (r["mode"], r["fault"])
        if k not in keys:
            keys.append(k)

    def med(rs, f):
        vals = [r[f] for r in rs if r.get(f) is not None]
        if not vals:
            return "–"
        return f"{statistics.median(vals):.0f} ({min(vals)}–{max(vals)})" if len(vals) > 1 else f"{vals[0]}"

    for mode, fault in keys:
        rs = [r for r in results["failover"] if (r["mode"], r["fault"]) == (mode, fault) and "error" not in r]
        bad = len([r for r in results["failover"] if (r["mode"], r["fault"]) == (mode, fault) and "error" in r])
        print(f"| {mode} | {fault} | {len(rs)}{f' (+{bad} failed)' if bad else ''} | {med(rs, 'detect_ms')} | {med(rs, 'first_packet_ms')} | {med(rs, 'arrival_gap_ms')} | {med(rs, 'pts_gap_ms')} | {med(rs, 'handed_over')} |")
    print("\nMedian (min–max) over the runs. PTS step 40 ms = continuous.\n")
    print("#### CPU of encoder redundancy (same channel, nonstopd alone)\n")
    print("| encoders | runs | CPU (% of a core) | output frames/s |")
    print("| --- | --- | --- | --- |")
    cpu = {}
    for mode in ["none", "active-active"]:
        rs = [r for r in results["cpu"] if r["mode"] == mode]
        c = statistics.median(r["cpu"] for r in rs) * 100
        cpu[mode] = c
        fps = statistics.median(r["fps"] for r in rs)
        label = "one (redundancy none)" if mode == "none" else "two (active-active)"
        print(f"| {label} | {len(rs)} | {c:.1f} | {fps:.1f} |")
    if cpu.get("none"):
        print(f"\nactive-active / single: **{cpu['active-active'] / cpu['none']:.2f}×** CPU.")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
