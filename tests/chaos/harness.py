#!/usr/bin/python3
"""The chaos harness: runs nonstopd with three channels fed by real senders
and recorded by real receivers, breaks things on a seeded schedule, and
judges the outputs. See docs/reliability.md.

usage: harness.py [--quick | --soak DURATION] [--seed N] [--only IDS] [--out DIR]
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import faults as F  # noqa: E402
import judge  # noqa: E402
import world as W  # noqa: E402


def parse_duration(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", s.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"duration \"{s}\": expected e.g. 90s, 30m, 4h")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def parse_ids(s):
    try:
        ids = sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"fault ids \"{s}\": expected e.g. 13,14")
    if not ids:
        raise argparse.ArgumentTypeError("--only: no fault ids")
    return ids


def channel(cid, inputs, outputs, redundancy=""):
    """One chaos channel's TOML: every channel has the same format, timing
    and encoder (x264); ids and URIs differ."""
    t = [f"""[[channel]]
id = "{cid}"
video = {{ width = {W.SIZE[0]}, height = {W.SIZE[1]}, framerate = {W.FPS} }}
timeout = "{int(W.TIMEOUT * 1000)}ms"
return_after = "{int(W.RETURN_AFTER)}s"
flap_window = "{int(W.FLAP_WINDOW)}s"
max_return_after = "{int(W.MAX_RETURN_AFTER)}s"
backoff = {{ initial = "500ms", max = "{int(W.BACKOFF_MAX)}s" }}
"""]
    t += [f'[[channel.input]]\nid = "{i}"\nuri = "{u}"\n' for i, u in inputs]
    t.append(f'[channel.encoder]\nid = "video"\npreset = "ultrafast"\nvideo_bitrate = 600\n'
             f'keyframe_interval = "1s"\n{redundancy}')
    t += [f'[[channel.output]]\nid = "{i}"\nuri = "{u}"\n' for i, u in outputs]
    return "".join(t)


class Chaos:
    def __init__(self, out, seed, soak, length, only=None):
        self.out, self.seed, self.soak, self.length = out, seed, soak, length
        self.only = only  # fault ids replayed from the seed's schedule (None: all)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.records = []  # what happened to each fault
        self.notes = []  # harness problems and skipped fault kinds
        self.judge_errors = []  # the judge's own failures: the run fails
        self.disk_full = False  # a disk-full fault is on: keep alpha's segments
        self.api = []  # (t, {channel: state} or None)
        self.resources = open(os.path.join(out, "resources.csv"), "w", buffering=1)
        self.resources.write("t,pid,rss_mb,fds,threads,cpu_pct\n")
        self.formats = {}
        self.senders, self.receivers = {}, {}
        self.netns = self.tmpfs = self.daemon = None
        self.bus_pid = None

    # --- the world -----------------------------------------------------
    def build(self):
        o = self.out
        self.netns = W.Netns("bravo")
        if not self.netns.up():
            self.notes.append(f"no network namespace ({self.netns.why}): the lossy link is on loopback")
        self.netem = self.netns.ok and self.netns.has_netem()
        if self.netns.ok and not self.netem:
            self.notes.append("loss and delay made by tests/chaos/impair.py, a relay on the link: this kernel "
                              f"has no sch_netem ({self.netns.netem_why}); congestion is a tbf qdisc in the namespace")
        if not self.netns.ok:
            self.notes.append("congestion skipped (no network namespace); loss and delay by the relay")
        self.tmpfs = W.Tmpfs(os.path.join(o, "rec-alpha"), W.TMPFS_MB)
        if not self.tmpfs.up():
            self.notes.append(f"disk-full skipped: no tmpfs ({self.tmpfs.why})")
        os.makedirs(os.path.join(o, "rec-charlie"), exist_ok=True)
        os.makedirs(os.path.join(o, "hls-bravo"), exist_ok=True)
        port = {k: W.free_port() for k in
                ("a_p", "a_b", "b_p", "b_l", "c_p", "c_b", "a_r", "c_r", "b_r", "c_u", "metrics")}
        self.port = port
        bravo_host = self.netns.host_ip if self.netns.ok else "127.0.0.1"
        self.inputs = {
            # (channel, target): (sink argv, in netns, udp port or None)
            ("alpha", "in:primary"): (["srtsink", f"uri=srt://127.0.0.1:{port['a_p']}?mode=listener",
                                       "wait-for-connection=false"], False, None),
            ("alpha", "in:backup"): (["udpsink", "host=127.0.0.1", f"port={port['a_b']}"], False,
                                     ("127.0.0.1", port["a_b"])),
            # bravo's primary comes over the lossy link: from the namespace
            # through the relay (impair.py) that can lose and delay packets.
            ("bravo", "in:primary"): (["udpsink", f"host={bravo_host}", f"port={port['b_l']}"],
                                      self.netns.ok, (bravo_host, port["b_l"])),
            ("charlie", "in:primary"): (["udpsink", "host=127.0.0.1", f"port={port['c_p']}"], False,
                                        ("127.0.0.1", port["c_p"])),
            ("charlie", "in:backup"): (["srtsink", f"uri=srt://127.0.0.1:{port['c_b']}?mode=caller"],
                                       False, None),
        }
        cfg = f"# Written by tests/chaos/harness.py (seed {self.seed}).\n" + "\n".join([
            channel("alpha",
                    [("primary", f"srt://127.0.0.1:{port['a_p']}?mode=caller"),
                     ("backup", f"udp://127.0.0.1:{port['a_b']}"),
                     ("slate", "slate://colour/0x000080?text=ALPHA")],
                    [("srt", f"srt://127.0.0.1:{port['a_r']}?mode=caller"),
                     ("rec", f"file://{self.tmpfs.path}/alpha.ts?segment={W.SEGMENT}s")],
                    'redundancy = "active-active"\nstall_timeout = "1s"\n'),
            channel("bravo",
                    [("primary", f"udp://127.0.0.1:{port['b_p']}"),
                     ("backup", "test://smpte?label=BRAVO%20BACKUP&tone=660"),
                     ("slate", "slate://colour/black?text=BRAVO")],
                    [("udp", f"udp://127.0.0.1:{port['b_r']}"),
                     ("hls", f"hls://{o}/hls-bravo?segment=2s&playlist=6")]),
            channel("charlie",
                    [("primary", f"udp://127.0.0.1:{port['c_p']}"),
                     ("backup", f"srt://127.0.0.1:{port['c_b']}?mode=listener"),
                     ("slate", "slate://colour/0x800000?text=CHARLIE")],
                    [("srt", f"srt://127.0.0.1:{port['c_r']}?mode=caller"),
                     ("udp", f"udp://127.0.0.1:{port['c_u']}"),
                     ("rec", f"file://{o}/rec-charlie/charlie.mp4?segment=30s")]),
        ])
        self.config = os.path.join(o, "chaos.toml")
        with open(self.config, "w") as f:
            f.write(cfg)
        chk = W.sh(os.path.join(W.ROOT, "target/release/nonstopd"), "check", self.config, check=False)
        if chk.returncode != 0:
            raise SystemExit(f"chaos: the generated config does not check:\n{chk.stdout}{chk.stderr}")
        self.bus, self.bus_pid = W.private_bus(o)
        # Receivers: what each output's destination recorded.
        tsrecv = os.path.join(W.HERE, "tsrecv.py")
        self.receivers = {}
        for ch, out, how, where in [("alpha", "srt", "--srt", str(port["a_r"])),
                                    ("bravo", "udp", "--udp", f"127.0.0.1:{port['b_r']}"),
                                    ("charlie", "srt", "--srt", str(port["c_r"])),
                                    ("charlie", "udp", "--udp", f"127.0.0.1:{port['c_u']}")]:
            name = os.path.join(o, f"recv-{ch}-{out}")
            self.receivers[(ch, f"out:{out}")] = W.Proc(
                name, [W.PY, tsrecv, how, where, "--log", name + ".jsonl"], name + ".log", priority=True)
        for r in self.receivers.values():
            r.start()
        self.impair_ctl = os.path.join(o, "impair.json")
        self.impair(loss=0, delay=0, jitter=0)
        self.relay = W.Proc("impair", [W.PY, os.path.join(W.HERE, "impair.py"), f"{bravo_host}:{port['b_l']}",
                                       f"127.0.0.1:{port['b_p']}", self.impair_ctl, str(self.seed)],
                            os.path.join(o, "impair.log")).start()
        self.senders = {}
        for key in self.inputs:
            self.formats[key] = 0
            self.senders[key] = self.sender(key).start()
        self.daemon = W.Daemon(o, self.config, self.bus, port["metrics"], time.time)
        self.daemon.start()

    def sender(self, key, garbage=False):
        sink, in_ns, udp = self.inputs[key]
        name = f"send-{key[0]}-{key[1][3:]}"
        log = os.path.join(self.out, name + ".log")
        if garbage:
            argv = [W.PY, os.path.join(W.ROOT, "tests/tools/garbage-sender"), str(udp[1]), udp[0]]
        else:
            size, fps, chans = F.FORMATS[self.formats[key]]
            argv = W.gst_sender(sink, size, fps, chans, pattern="ball" if key[1] == "in:primary" else "smpte",
                                freq=440 if key[1] == "in:primary" else 660)
        if in_ns:
            argv = self.netns.exec_argv(argv)
        return W.Proc(name, argv, log)

    # --- faults ----------------------------------------------------------
    def inject(self, f):
        """Makes one fault happen; returns how to undo it."""
        kind, ch = f["kind"], f["channel"]
        key = (ch, f["targets"][0]) if f["targets"] else None
        p = f["params"]
        if kind == "sender-kill":
            self.senders[key].kill()
            return lambda: self.senders.__setitem__(key, self.sender(key).start())
        if kind == "sender-pause":
            self.senders[key].signal(signal.SIGSTOP)
            return lambda: self.senders[key].signal(signal.SIGCONT)
        if kind == "garbage":
            self.senders[key].kill()
            g = self.sender(key, garbage=True).start()

            def undo():
                g.kill()
                self.senders[key] = self.sender(key).start()
            return undo
        if kind == "format-change":
            old = self.senders[key]
            fmt = p["format"]
            if fmt == self.formats[key]:
                fmt = (fmt + 1) % len(F.FORMATS)
            self.formats[key] = fmt
            f["params"]["to"] = "%dx%d@%d %dch" % (*F.FORMATS[fmt][0], F.FORMATS[fmt][1], F.FORMATS[fmt][2])
            # The new sender starts before the old one stops: one stream
            # whose format changes (new PMT, SPS, audio layout).
            new = self.sender(key).start()
            time.sleep(0.3)
            old.kill()
            self.senders[key] = new
            return lambda: None
        if kind in ("loss", "delay"):
            if kind == "loss":
                args, relay = ["loss", f"{p['loss']}%"], {"loss": p["loss"]}
            else:
                args = ["delay", f"{p['delay']}ms"] + ([f"{p['jitter']}ms"] if p["jitter"] else [])
                relay = {"delay": p["delay"], "jitter": p["jitter"]}
            if self.netem:
                p["via"] = "netem"
                self.netns.qdisc("netem", *args)
                return lambda: self.netns.qdisc()
            p["via"] = "relay"
            self.impair(**relay)
            return lambda: self.impair(loss=0, delay=0, jitter=0)
        if kind == "congestion":
            if not self.netns.ok:
                return None
            self.netns.qdisc("tbf", "rate", f"{p['rate_kbit']}kbit", "burst", "16kbit", "latency", "400ms")
            return lambda: self.netns.qdisc()
        if kind == "receiver-kill":
            r = self.receivers[key]
            r.kill()
            return r.start
        if kind == "receiver-stall":
            r = self.receivers[key]
            r.signal(signal.SIGSTOP)
            return lambda: r.signal(signal.SIGCONT)
        if kind == "disk-full":
            if not self.tmpfs.ok:
                return None
            # The archiver must not free room while the disk is meant to
            # be full: the recording would never hit ENOSPC.
            self.disk_full = True
            f["params"]["filled_bytes"] = self.tmpfs.fill()

            def undo():
                self.tmpfs.free()
                self.disk_full = False
            return undo
        if kind == "encoder-fail":
            r = subprocess.run([os.path.join(W.ROOT, "target/release/nonstopctl"), "--address", self.bus,
                                "drill", ch, "encoder-fail", "--for", f"{f['dur']:g}s", "--json"],
                               capture_output=True, text=True, timeout=60)
            try:
                f["drill"] = json.loads(r.stdout)
            except ValueError:
                f["drill"] = {"error": (r.stdout + r.stderr).strip()[-300:]}
            f["drill_exit"] = r.returncode
            return lambda: None
        if kind == "flapping":
            stop = threading.Event()

            def flap():
                up = True
                while not stop.wait(p["period"] / 2):
                    if up:
                        self.senders[key].kill()
                    else:
                        self.senders[key] = self.sender(key).start()
                    up = not up
                    f.setdefault("flips", []).append(round(time.time(), 3))
                if not up:
                    self.senders[key] = self.sender(key).start()
                    f["flips"].append(round(time.time(), 3))
            t = threading.Thread(target=flap)
            t.start()

            def undo():
                stop.set()
                t.join()
            return undo
        if kind == "daemon-kill":
            self.daemon.kill()
            return lambda: None
        raise ValueError(kind)

    def impair(self, **settings):
        tmp = self.impair_ctl + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(settings, fh)
        os.replace(tmp, self.impair_ctl)

    def run_fault(self, f, t0):
        delay = t0 + f["at"] - time.time()
        if delay > 0 and self.done.wait(delay):
            return
        parts = f.get("parts") or [f]
        undos = []
        t_inject = time.time()
        for part in parts:
            part["t_inject"] = round(time.time(), 3)
            try:
                u = self.inject(part)
            except Exception as e:  # a harness failure, never silent
                self.notes.append(f"fault {f['id']} {part['kind']}: could not inject: {e!r}")
                u = None
            part["skipped"] = u is None
            undos.append(u)
        f["t_inject"] = round(t_inject, 3)
        print(f"chaos: {time.time() - t0:7.1f}s fault {f['id']} {f['kind']} {f['channel']} "
              f"{','.join(f['targets'])} {json.dumps(f['params'])}", flush=True)
        wait = f["dur"] - (time.time() - t_inject)
        if wait > 0:
            self.done.wait(wait)
        for part, u in zip(parts, undos):
            if u is not None:
                u()
            part["t_restore"] = round(time.time(), 3)
        f["t_restore"] = round(time.time(), 3)
        f["skipped"] = all(p["skipped"] for p in parts)
        with self.lock:
            self.records.append(f)

    # --- watching ----------------------------------------------------------
    def watch(self, period):
        last = None
        while not self.done.wait(period):
            now = time.time()
            try:
                judge.keep_hls(self)
            except OSError as e:
                self.judge_errors.append(f"keeping HLS segments: {e!r}")
            pid = self.daemon.pid()
            if pid:
                try:
                    rss, fds, threads, cpu = W.proc_sample(pid)
                    pct = 0.0
                    if last and last[0] == pid:
                        pct = 100.0 * (cpu - last[2]) / (now - last[1])
                    last = (pid, now, cpu)
                    self.resources.write(f"{now:.1f},{pid},{rss / 1e6:.1f},{fds},{threads},{pct:.1f}\n")
                except (FileNotFoundError, ProcessLookupError, KeyError):
                    pass
            try:
                st = W.http_json(self.port["metrics"])
                self.api.append((now, {c["id"]: c["state"] for c in st["channels"]}))
            except Exception:
                self.api.append((now, None))

    def check_final(self):
        judge.check_segments(self, final=True)

    def archive(self):
        """Checks finished recording segments and deletes alpha's (its tmpfs is
        small), as an archiver would. A judge that fails fails the run; it
        must not stop the run half-way (and hang it)."""
        try:
            judge.check_segments(self, final=False)
        except Exception as e:
            self.judge_errors.append(f"a pass over the recordings failed: {e!r}")

    # --- the run -----------------------------------------------------------
    def run(self, sched):
        t0 = time.time()
        self.t0 = t0
        with open(os.path.join(self.out, "schedule.json"), "w") as fh:
            json.dump({"seed": self.seed, "soak": self.soak, "length": self.length,
                       "faults": sched}, fh, indent=1)
        threads = [threading.Thread(target=self.run_fault, args=(f, t0)) for f in sched]
        watcher = threading.Thread(target=self.watch, args=(2.0 if not self.soak else 5.0,))
        watcher.start()
        for t in threads:
            t.start()
        end = t0 + self.length
        next_report = t0 + 600
        while time.time() < end:
            time.sleep(min(5.0, max(0.1, end - time.time())))
            if time.time() > t0 + 30:
                self.archive()
            if self.soak and time.time() >= next_report:
                next_report += 600
                judge.report(self, final=False)
        for t in threads:
            t.join()
        self.done.set()
        watcher.join()
        self.exit_status = self.daemon.stop()
        time.sleep(1.0)
        for r in self.receivers.values():
            r.signal(signal.SIGTERM)
        time.sleep(0.5)

    def save(self):
        """What judging needs, so a run can be judged again (--judge DIR)."""
        state = {k: getattr(self, k, None) for k in
                 ("seed", "soak", "length", "only", "t0", "notes", "api", "records", "exit_status", "segments", "checked",
                  "judge_errors")}
        state["lives"] = self.daemon.lives
        state["receivers"] = [list(k) for k in self.receivers]
        with open(os.path.join(self.out, "state.json"), "w") as fh:
            json.dump(state, fh)

    @classmethod
    def load(cls, out):
        with open(os.path.join(out, "state.json")) as fh:
            state = json.load(fh)
        c = cls.__new__(cls)
        c.out, c.lock = out, threading.Lock()
        for k, v in state.items():
            if v is not None:
                setattr(c, k, v)
        c.receivers = {tuple(k): None for k in state["receivers"]}
        c.daemon = argparse.Namespace(lives=state["lives"])
        c.api = [tuple(x) for x in state["api"]]
        return c

    def teardown(self):
        for p in list(self.senders.values()) + list(self.receivers.values()) + [getattr(self, "relay", None)]:
            if p is None:
                continue
            p.kill()
        if self.daemon and self.daemon.pid():
            self.daemon.stop()
        if self.bus_pid:
            W.sh("kill", str(self.bus_pid), check=False)
        if self.netns:
            self.netns.down()
        if self.tmpfs:
            self.tmpfs.down()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="one fault of each kind, under 5 minutes")
    mode.add_argument("--soak", type=parse_duration, metavar="DURATION", help="random faults for DURATION (e.g. 4h)")
    ap.add_argument("--seed", type=int, help="replays a schedule (default: a new one, printed)")
    ap.add_argument("--out", help="where the logs, recordings and report go (default: a new temp dir)")
    ap.add_argument("--only", type=parse_ids, metavar="IDS",
                    help="replay only these faults of the seed's schedule (e.g. 13,14): a past failure as a fixed case")
    ap.add_argument("--schedule-only", action="store_true", help="print the schedule and exit")
    ap.add_argument("--judge", metavar="DIR", help="judge a finished run's DIR again")
    a = ap.parse_args()
    if a.judge:
        return 0 if judge.report(Chaos.load(a.judge), final=True) else 1
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 1 << 31)
    soak = a.soak is not None
    sched = F.schedule(seed, a.soak or 0, soak)
    if a.only:
        try:
            sched = F.only(sched, a.only)
        except ValueError as e:
            ap.error(str(e))
    length = a.soak if soak else max(f["at"] + f["dur"] for f in sched) + F.REST + 5
    print(f"chaos: seed {seed} ({'soak ' + str(int(length)) + ' s' if soak else 'quick'}); "
          f"replay with: {judge.replay(soak, length, seed, a.only)}", flush=True)
    if a.schedule_only:
        print(json.dumps(sched, indent=1))
        return 0
    out = a.out or subprocess.run(["mktemp", "-d", "-t", "nonstop-chaos.XXXXXX"], capture_output=True,
                                  text=True).stdout.strip()
    os.makedirs(out, exist_ok=True)
    print(f"chaos: {len(sched)} faults over {length:.0f} s; logs and report in {out}", flush=True)
    c = Chaos(out, seed, soak, length, a.only)
    try:
        c.build()
        c.run(sched)
        c.check_final()
        c.save()
        ok = judge.report(c, final=True)
    finally:
        c.teardown()
    print(f"chaos: report {os.path.join(out, 'report.md')}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
