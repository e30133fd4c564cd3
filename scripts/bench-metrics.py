#!/usr/bin/python3
"""Monitoring cost of nonstopd (run by `scripts/bench --only metrics`).

Starts nonstopd with N channels (default 16; two 160x120 test inputs
each, x264 ultrafast, one UDP output; no D-Bus) serving HTTP on a free
loopback port, waits until every channel is on air, then:
- times 1000 scrapes of /metrics from one keep-alive HTTP/1.1 client
  (http.client: request sent -> whole body read), with the body size; the
  peer, timed in the same loop, is the same server answering a path it
  does not have (404): the HTTP floor of this server and machine;
- times GET /api/status the same way;
- measures the CPU of thumbnails: nonstopd's CPU time (utime + stime of
  the process, /proc/PID/stat) over S seconds (default 20) while a client
  fetches every thumbnail (/thumb/<channel>/<input>.jpg for each input and
  /thumb/<channel>/program.jpg) of every channel every 2 s, against S
  seconds without thumbnail requests; R such pairs (default 2), the
  windows alternating and the first and last without. Reported: the
  difference per channel and the CPU time per thumbnail served. If
  nonstopd serves no thumbnails, that part is reported as not measured.
Prints markdown tables.

usage: bench-metrics.py [run] --nonstopd BIN [--channels N] [--scrapes N]
                        [--cpu-secs S] [--cpu-reps R] [--thumb-channels N]
                        [--quick]
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from benchlib import channels_config as config, free_port, pct, cpu_seconds  # noqa: E402











def get(conn, path):
    """One GET on a keep-alive connection: (ms, status, content type, body)."""
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    ms = (time.perf_counter() - t0) * 1000
    return ms, r.status, r.getheader("Content-Type", ""), body


def status(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        _, code, _, body = get(c, "/api/status")
        return json.loads(body) if code == 200 else None
    finally:
        c.close()


def thumb_paths(st, n):
    """The thumbnail paths of the first N channels, from /api/status when it
    names them, else the documented form."""
    paths = []
    for ch in st["channels"][:n]:
        for i in ch["inputs"]:
            paths.append(i.get("thumbnail") or f"/thumb/{ch['id']}/{i['id']}.jpg")
        paths.append(ch.get("program_thumbnail") or f"/thumb/{ch['id']}/program.jpg")
    return paths


def fetch_loop(port, paths, stop, stats):
    """Every 2 s, GETs every path (one keep-alive connection)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    next_round = time.monotonic()
    while not stop.is_set():
        for p in paths:
            try:
                ms, code, ctype, body = get(conn, p)
            except (OSError, http.client.HTTPException):
                stats["errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            if code == 200 and ctype.startswith("image/jpeg") and body[:2] == b"\xff\xd8":
                stats["ok"] += 1
                stats["ms"].append(ms)
                stats["bytes"].append(len(body))
            else:
                stats["errors"] += 1
        stats["rounds"] += 1
        next_round += 2.0
        stop.wait(max(0.0, next_round - time.monotonic()))
    conn.close()


def cpu_window(pid, secs, port=None, paths=None):
    """nonstopd's CPU over SECS (% of one core); with PATHS, fetched meanwhile."""
    stop, stats = threading.Event(), {"ok": 0, "errors": 0, "rounds": 0, "ms": [], "bytes": []}
    th = None
    if paths:
        th = threading.Thread(target=fetch_loop, args=(port, paths, stop, stats))
        th.start()
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(secs)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    stop.set()
    if th:
        th.join()
    return 100 * (c1 - c0) / (t1 - t0), stats


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        del sys.argv[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nonstopd", required=True)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--scrapes", type=int, default=1000)
    ap.add_argument("--cpu-secs", type=float, default=20)
    ap.add_argument("--cpu-reps", type=int, default=2)
    ap.add_argument("--thumb-channels", type=int, default=None, help="default: all")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    scrapes = 200 if a.quick else a.scrapes
    secs = 6 if a.quick else a.cpu_secs
    reps = 1 if a.quick else max(1, a.cpu_reps)
    n_thumb = min(a.thumb_channels or a.channels, a.channels)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="nonstop-bench-metrics-") as d:
        cfg = os.path.join(d, "ch.toml")
        with open(cfg, "w") as f:
            f.write(config(a.channels, 41000))
        log = open(os.path.join(d, "log"), "w")
        daemon = subprocess.Popen(
            [a.nonstopd, "--config", cfg, "--no-dbus", "--metrics", f"127.0.0.1:{port}"],
            stderr=log,
        )
        try:
            deadline = time.time() + 90
            st = None
            while time.time() < deadline:
                if daemon.poll() is not None:
                    sys.exit(f"bench-metrics: nonstopd exited ({daemon.returncode}); see its log")
                try:
                    st = status(port)
                    if st and len(st["channels"]) == a.channels and all(
                        c["state"] == "on-air" for c in st["channels"]
                    ):
                        break
                except (OSError, ValueError, http.client.HTTPException):
                    pass
                time.sleep(0.3)
            else:
                sys.exit(f"bench-metrics: the {a.channels} channels were not on air within 90 s")
            time.sleep(3)  # every channel settled; an encode latency sample or more

            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            get(conn, "/metrics")  # the connection is open
            scrape, peer, api = [], [], []
            size = samples = api_size = 0
            for i in range(scrapes):
                ms, code, ctype, body = get(conn, "/metrics")
                if code != 200:
                    sys.exit(f"bench-metrics: /metrics answered {code}")
                scrape.append(ms)
                size = len(body)
                ms, code, _, _ = get(conn, "/no-such-path")
                peer.append(ms)
                if i % 5 == 0:
                    ms, code, _, body = get(conn, "/api/status")
                    api.append(ms)
                    api_size = len(body)
            text = get(conn, "/metrics")[3].decode()
            samples = sum(1 for l in text.splitlines() if l and not l.startswith("#"))
            conn.close()

            # Thumbnails: is the endpoint there, with a frame?
            st = status(port)
            paths = thumb_paths(st, n_thumb)
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            probe = get(c, paths[0])
            c.close()
            thumbs_ok = probe[1] == 200 and probe[2].startswith("image/jpeg")
            cpu = None
            if thumbs_ok:
                without, with_t, tstats = [cpu_window(daemon.pid, secs)[0]], [], []
                for _ in range(reps):
                    pc, ts = cpu_window(daemon.pid, secs, port, paths)
                    with_t.append(pc)
                    tstats.append(ts)
                    without.append(cpu_window(daemon.pid, secs)[0])
                cpu = (without, with_t, tstats)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
            log.close()

    target = 5.0
    print(f"#### HTTP latency, {a.channels} channels running (keep-alive client on the same machine)\n")
    print("| request | requests | p50 (ms) | p99 (ms) | max (ms) | body | target |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    met = "met" if pct(scrape, 99) <= target else "missed"
    for name, v, body, t in [
        ("`GET /metrics`", scrape, f"{size} B, {samples} samples", f"p99 ≤ {target:g} ms: **{met}**"),
        ("`GET /api/status`", api, f"{api_size} B", ""),
        ("peer: the same server's 404", peer, "", ""),
    ]:
        print(f"| {name} | {len(v)} | {statistics.median(v):.2f} | {pct(v, 99):.2f} | {max(v):.2f} | {body} | {t} |")
    print()
    print(f"#### CPU of thumbnails ({n_thumb} of {a.channels} channels, every thumbnail every 2 s)\n")
    if cpu is None:
        print(f"Not measured: nonstopd does not serve thumbnails here (`GET {paths[0]}` answered "
              f"{probe[1]} {probe[2] or 'no content type'}: {probe[3][:60]!r}).")
        return
    without, with_t, tstats = cpu
    base, thumbs = statistics.mean(without), statistics.mean(with_t)
    per = (thumbs - base) / n_thumb
    ok = sum(t["ok"] for t in tstats)
    failed = sum(t["errors"] for t in tstats)
    ms = [m for t in tstats for m in t["ms"]]
    sizes = [b for t in tstats for b in t["bytes"]]
    # CPU time per thumbnail served: the extra CPU over the windows with
    # thumbnails, divided by the thumbnails fetched in them.
    cpu_ms = (thumbs - base) / 100 * secs * len(with_t) * 1000 / max(1, ok)
    print("| nonstopd CPU (% of a core) | without thumbnails | with thumbnails | difference | per channel | CPU per thumbnail |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {len(without)} + {len(with_t)} windows of {secs:g} s, alternating "
          f"| {base:.1f} ({', '.join(f'{x:.1f}' for x in without)}) "
          f"| {thumbs:.1f} ({', '.join(f'{x:.1f}' for x in with_t)}) "
          f"| {thumbs - base:+.1f} | **{per:+.2f}** | {cpu_ms:.1f} ms |")
    print()
    print(f"Thumbnails fetched: {ok} in {sum(t['rounds'] for t in tstats)} rounds of {len(paths)} "
          f"({failed} failed), each in {statistics.median(ms) if ms else float('nan'):.1f} ms median "
          f"(p99 {pct(ms, 99) if ms else float('nan'):.1f} ms), "
          f"{statistics.median(sizes) / 1024 if sizes else 0:.1f} KiB median.")


if __name__ == "__main__":
    main()
