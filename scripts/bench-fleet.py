#!/usr/bin/python3
"""Fleet benchmark for nonstopd (run by `scripts/bench --only fleet`; stdlib
only). A 3-member etcd cluster and two boxes (two nonstopd processes) on
127.0.0.1 share one active-passive channel whose MPEG-TS goes to one UDP
receiver; the receiver tells the boxes apart by their source ports.

1. Leader kills: kill -9 the leading box at a random phase of its lease
   renewal, restart it (it comes back as the standby), N times. Per kill,
   at the receiver: takeover = the last video frame (PES start) of the old
   leader → the first of the new one; overlap = datagrams from the old
   leader after the new one's first; and whether the new one starts on a
   keyframe (random_access_indicator).
2. Drains: put the leader's drain key (what `nonstopctl fleet drain` does),
   then remove it; the same figures for the handover.
3. CPU: utime+stime per wall second of the standby box against the leader.

Run at a lease TTL of 2 s (etcd's default timing) and of 1 s (etcd with
--heartbeat-interval 100 --election-timeout 500, docs/fleet.md).
Prints markdown; `--json FILE` also writes the raw figures.
usage: bench-fleet.py [run] --nonstopd BIN [--quick] [--kills N] [--drains N] [--ttl 2,1] [--json FILE]
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import cpu_seconds, free_port, pct  # noqa: E402


class Receiver(threading.Thread):
    """Every datagram (arrival, source port) and every video PES start
    (arrival, source port, keyframe)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.lock = threading.Lock()
        self.datagrams = []
        self.frames = []
        self.running = True

    def run(self):
        while self.running:
            try:
                data, (_, src) = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            now = time.monotonic()
            frames = []
            for i in range(0, len(data) - 187, 188):
                pkt = data[i : i + 188]
                if pkt[0] != 0x47 or not pkt[1] & 0x40:
                    continue
                afc = (pkt[3] >> 4) & 3
                off = 4
                key = False
                if afc in (2, 3):
                    if pkt[4] > 0:
                        key = bool(pkt[5] & 0x40)
                    off += 1 + pkt[4]
                if afc == 2 or off + 4 > 188:
                    continue
                pes = pkt[off:]
                if pes[0:3] == b"\x00\x00\x01" and 0xE0 <= pes[3] <= 0xEF:
                    frames.append((now, src, key))
            with self.lock:
                self.datagrams.append((now, src))
                self.frames.extend(frames)

    def since(self, t0):
        with self.lock:
            return (
                [d for d in self.datagrams if d[0] >= t0],
                [f for f in self.frames if f[0] >= t0],
            )

    def stop(self):
        self.running = False
        self.join(2)
        self.sock.close()


def judge(rx, t0, old_src, deadline):
    """The handover from old_src after t0: (takeover s, overlap datagrams,
    starts on a keyframe), or None if nobody else sent before deadline."""
    while time.monotonic() < deadline:
        dgs, frames = rx.since(t0)
        new = [f for f in frames if f[1] != old_src]
        if new:
            first = new[0]
            old_frames = [f for f in frames if f[1] == old_src and f[0] <= first[0]]
            last_old = old_frames[-1][0] if old_frames else t0
            overlap = sum(1 for d in dgs if d[1] == old_src and d[0] > first[0])
            return first[0] - last_old, overlap, first[2], first[1]
        time.sleep(0.05)
    return None


class Fleet:
    def __init__(self, nonstopd, ttl, work):
        self.nonstopd = nonstopd
        self.ttl = ttl
        self.work = work
        self.etcd = []
        self.boxes = {}
        self.logs = {}
        self.marks = {}
        self.out_port = free_port()
        self.prefix = f"/bench{os.getpid()}"

    def start_etcd(self):
        flags = ["--heartbeat-interval", "100", "--election-timeout", "500"] if self.ttl < 2 else []
        names = ["e1", "e2", "e3"]
        ports = {n: (free_port(), free_port()) for n in names}
        cluster = ",".join(f"{n}=http://127.0.0.1:{ports[n][1]}" for n in names)
        self.endpoints = [f"http://127.0.0.1:{ports[n][0]}" for n in names]
        for n in names:
            c, p = ports[n]
            log = open(os.path.join(self.work, f"etcd-{n}.log"), "w")
            self.etcd.append(subprocess.Popen(
                ["etcd", "--name", n, "--data-dir", os.path.join(self.work, n),
                 "--listen-client-urls", f"http://127.0.0.1:{c}", "--advertise-client-urls", f"http://127.0.0.1:{c}",
                 "--listen-peer-urls", f"http://127.0.0.1:{p}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
                 "--initial-cluster", cluster, "--initial-cluster-state", "new",
                 "--logger", "zap", "--log-outputs", "stderr", *flags],
                stdout=log, stderr=log))
        for _ in range(200):
            if self.etcdctl("endpoint", "health", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("bench-fleet: etcd did not become healthy")

    def etcdctl(self, *args, check=True):
        return subprocess.run(["etcdctl", "--endpoints", ",".join(self.endpoints), *args],
                              env={**os.environ, "ETCDCTL_API": "3"}, capture_output=True, text=True, check=check)

    def config(self, name, peer):
        return f"""
[fleet]
endpoints = {json.dumps(self.endpoints)}
node = "{name}"
prefix = "{self.prefix}"
ttl = "{self.ttl}s"
peer = "127.0.0.1:{peer}"

[[channel]]
id = "bench"
video = {{ width = 640, height = 360, framerate = 25 }}

[[channel.input]]
id = "cam"
uri = "test://ball?label=FLEET"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 800
keyframe_interval = "1s"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:{self.out_port}"
"""

    def start_box(self, name):
        path = os.path.join(self.work, f"{name}.toml")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(self.config(name, free_port()))
        log = os.path.join(self.work, f"{name}.log")
        self.logs[name] = log
        self.marks[name] = self.standby_lines(name)
        self.boxes[name] = subprocess.Popen(
            [self.nonstopd, "--config", path, "--no-dbus", "--metrics", ""],
            stdout=subprocess.DEVNULL, stderr=open(log, "a"), env={**os.environ, "RUST_LOG": "info"})

    def leader(self):
        r = self.etcdctl("get", "--print-value-only", f"{self.prefix}/leaders/bench", check=False)
        try:
            return json.loads(r.stdout.strip().splitlines()[0])["node"]
        except (IndexError, ValueError, KeyError):
            return None

    def standby_lines(self, name):
        try:
            with open(os.path.join(self.work, f"{name}.log")) as f:
                return f.read().count('role="standby" leader=box')
        except FileNotFoundError:
            return 0

    def wait_standby(self, name, timeout=30):
        """Until `name`, since its last start, has logged that it is the
        standby of a leader."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.standby_lines(name) > self.marks[name]:
                return True
            time.sleep(0.1)
        return False

    def stop(self):
        for p in self.boxes.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.boxes.values():
            try:
                p.wait(8)
            except subprocess.TimeoutExpired:
                p.kill()
        for p in self.etcd:
            p.kill()
            p.wait()


def source_of(rx, t0, secs=1.0):
    """The source port sending now."""
    time.sleep(secs)
    dgs, _ = rx.since(t0)
    return dgs[-1][1] if dgs else None


def run_ttl(nonstopd, ttl, kills, drains, cpu_secs):
    work = tempfile.mkdtemp(prefix=f"bench-fleet-{ttl}s-")
    fleet = Fleet(nonstopd, ttl, work)
    rx = Receiver(fleet.out_port)
    rx.start()
    res = {"ttl": ttl, "kills": [], "drains": [], "cpu": {}}
    try:
        fleet.start_etcd()
        fleet.start_box("box-a")
        time.sleep(1.0)
        fleet.start_box("box-b")
        if not fleet.wait_standby("box-b", 20) and not fleet.wait_standby("box-a", 5):
            raise SystemExit(f"bench-fleet: no standby came up ({work})")
        time.sleep(3)
        # CPU: the leader against the warm standby, same window.
        lead = fleet.leader()
        other = "box-b" if lead == "box-a" else "box-a"
        c0 = {n: cpu_seconds(fleet.boxes[n].pid) for n in (lead, other)}
        w0 = time.monotonic()
        # Meanwhile, once a second, the boxes' output delays against UTC as
        # they publish them (the epoch offset is their difference).
        offsets = []
        while time.monotonic() - w0 < cpu_secs:
            r = fleet.etcdctl("get", "--prefix", f"{fleet.prefix}/epoch/bench/", check=False)
            vals = r.stdout.split()
            delays = {vals[i].rsplit("/", 1)[1]: int(vals[i + 1]) for i in range(0, len(vals) - 1, 2)}
            if len(delays) == 2:
                a, b = delays.values()
                offsets.append(abs(a - b) / 1000.0)
            time.sleep(1)
        res["epoch_ms"] = offsets
        wall = time.monotonic() - w0
        res["cpu"] = {
            "active": (cpu_seconds(fleet.boxes[lead].pid) - c0[lead]) / wall,
            "standby": (cpu_seconds(fleet.boxes[other].pid) - c0[other]) / wall,
        }
        for k in range(kills):
            lead = fleet.leader()
            t0 = time.monotonic()
            src = source_of(rx, t0)
            # A random phase of the renewal period (TTL/3).
            time.sleep(random.uniform(0, ttl / 3))
            tk = time.monotonic()
            fleet.boxes[lead].kill()
            fleet.boxes[lead].wait()
            j = judge(rx, tk, src, tk + ttl + 8)
            if j is None:
                raise SystemExit(f"bench-fleet: no takeover after kill {k + 1} ({work})")
            res["kills"].append({"takeover_s": j[0], "overlap": j[1], "keyframe": j[2]})
            print(f"bench-fleet: ttl {ttl}s kill {k + 1}/{kills}: takeover {j[0] * 1000:.0f} ms, overlap {j[1]}, keyframe {j[2]}", file=sys.stderr)
            fleet.start_box(lead)
            if not fleet.wait_standby(lead):
                raise SystemExit(f"bench-fleet: {lead} did not come back as the standby ({work})")
            time.sleep(1.5)
        for d in range(drains):
            lead = fleet.leader()
            t0 = time.monotonic()
            src = source_of(rx, t0)
            td = time.monotonic()
            fleet.etcdctl("put", f"{fleet.prefix}/drain/{lead}", "1")
            j = judge(rx, td, src, td + 10)
            if j is None:
                raise SystemExit(f"bench-fleet: no handover after drain {d + 1} ({work})")
            res["drains"].append({"gap_s": j[0], "overlap": j[1], "keyframe": j[2]})
            print(f"bench-fleet: ttl {ttl}s drain {d + 1}/{drains}: gap {j[0] * 1000:.0f} ms, overlap {j[1]}, keyframe {j[2]}", file=sys.stderr)
            time.sleep(1.0)
            fleet.etcdctl("del", f"{fleet.prefix}/drain/{lead}")
            time.sleep(2.0)
    finally:
        fleet.stop()
        rx.stop()
    shutil.rmtree(work, ignore_errors=True)
    return res


def table(results):
    out = ["| lease TTL | takeovers | takeover p50 | p99 | max | target (TTL + 0.5 s) | overlap (datagrams, all runs) | on a keyframe | drains | drain gap p50 / max | drain overlap | CPU active | CPU warm standby | epoch offset p50 / max |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        t = [k["takeover_s"] * 1000 for k in r["kills"]]
        g = [d["gap_s"] * 1000 for d in r["drains"]]
        ov = sum(k["overlap"] for k in r["kills"])
        dov = sum(d["overlap"] for d in r["drains"])
        keys = sum(1 for k in r["kills"] + r["drains"] if k["keyframe"])
        n = len(r["kills"]) + len(r["drains"])
        target = (r["ttl"] + 0.5) * 1000
        p99 = pct(t, 99) if t else 0
        verdict = "met" if t and p99 <= target else "missed"
        e = r.get("epoch_ms") or []
        epoch = f"{pct(e, 50):.1f} / {max(e):.1f} ms ({len(e)} samples)" if e else "no sample"
        out.append(
            f"| {r['ttl']} s | {len(t)} | {pct(t, 50):.0f} ms | {p99:.0f} ms | {max(t):.0f} ms | {target:.0f} ms: {verdict} | {ov} |"
            f" {keys}/{n} | {len(g)} | {pct(g, 50) if g else 0:.0f} / {max(g) if g else 0:.0f} ms | {dov} |"
            f" {r['cpu']['active'] * 100:.0f} % | {r['cpu']['standby'] * 100:.0f} % |"
            f" {epoch} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", nargs="?", choices=["run"], default="run")
    ap.add_argument("--nonstopd", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--drains", type=int, default=5)
    ap.add_argument("--ttl", default="2,1")
    ap.add_argument("--cpu-secs", type=float, default=15)
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.quick:
        a.kills, a.drains, a.cpu_secs = 3, 2, 5
    if not shutil.which("etcd"):
        raise SystemExit("bench-fleet: etcd not found (scripts/bootstrap installs etcd-server)")
    results = [run_ttl(a.nonstopd, int(t), a.kills, a.drains, a.cpu_secs) for t in a.ttl.split(",")]
    print("### The fleet: takeover, drain and the cost of a warm standby\n")
    print("Two nonstopd boxes and a 3-member etcd on 127.0.0.1, one active-passive 640x360 25 fps channel (x264 ultrafast, keyframe every 1 s) to one UDP receiver. "
          "Takeover: the old leader's last video frame → the new leader's first, at the receiver, after kill -9 at a random phase of the renewal. "
          "Drain: the drain key put for the leader. CPU: utime+stime per wall second of each box, same window. "
          "Epoch offset: the difference of the two boxes' output delays against UTC (what each publishes to etcd), sampled once a second during the CPU window; one frame is 40 ms.\n")
    print(table(results))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
