#!/usr/bin/python3
"""Checks of the harness's own judge: the TS receiver finds the video
timestamps of a real stream, resynchronises after garbage and cut packets,
reports a missing frame and a pause in arrival; and the schedule is a
function of the seed. Run by tests/chaos_quick.sh before the chaos run."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import faults  # noqa: E402
import tsrecv  # noqa: E402


def make_ts(path, frames=50):
    subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", f"num-buffers={frames}", "!",
                    "video/x-raw,width=160,height=90,framerate=25/1", "!", "x264enc",
                    "speed-preset=ultrafast", "key-int-max=25", "!", "h264parse", "!", "mpegtsmux",
                    "!", "filesink", f"location={path}"], check=True)


class Events:
    def __init__(self):
        self.items = []

    def write(self, s):
        self.items.append(json.loads(s))

    def flush(self):
        pass


class TsRecv(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.ts = os.path.join(cls.dir.name, "a.ts")
        make_ts(cls.ts)
        with open(cls.ts, "rb") as fh:
            cls.data = fh.read()

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def test_every_frame_one_frame_apart(self):
        pts, anomalies = tsrecv.scan_file(self.ts)
        self.assertEqual(len(pts), 50)
        self.assertEqual(anomalies, [])
        steps = {round(b - a, 3) for a, b in zip(pts, pts[1:])}
        self.assertEqual(steps, {0.04})

    def test_garbage_and_cut_packets_are_skipped(self):
        messy = os.urandom(1000) + self.data[:188 * 40 + 77] + os.urandom(333) + self.data[188 * 40 + 77:]
        path = os.path.join(self.dir.name, "messy.ts")
        with open(path, "wb") as fh:
            fh.write(messy)
        pts, _ = tsrecv.scan_file(path)
        self.assertGreaterEqual(len(pts), 48)

    def test_a_missing_frame_is_reported(self):
        ev = Events()
        j = tsrecv.Judge(ev, clock=lambda: 0.0)
        # Drop every packet of one PES in the middle: find the 20th video
        # packet start and cut until the next start.
        packets = [self.data[i:i + 188] for i in range(0, len(self.data), 188)]
        pid = lambda p: ((p[1] & 0x1F) << 8) | p[2]  # noqa: E731
        vpid = max(set(map(pid, packets)), key=lambda v: sum(1 for p in packets if pid(p) == v))
        starts = [i for i, p in enumerate(packets) if pid(p) == vpid and p[1] & 0x40]
        cut = packets[:starts[20]] + packets[starts[21]:]
        j.feed(b"".join(cut), now=0.0)
        steps = [e["step"] for e in ev.items if e["ev"] == "pts"]
        self.assertEqual(steps, [0.08])

    def test_a_pause_in_arrival_is_reported(self):
        ev = Events()
        j = tsrecv.Judge(ev, gap=0.2, clock=lambda: 0.0)
        half = len(self.data) // 376 * 188
        j.feed(self.data[:half], now=10.0)
        j.feed(self.data[half:], now=10.7)
        gaps = [e for e in ev.items if e["ev"] == "gap"]
        self.assertEqual(len(gaps), 1)
        self.assertAlmostEqual(gaps[0]["gap"], 0.7, places=3)


class Schedule(unittest.TestCase):
    def test_the_seed_fixes_the_schedule(self):
        a, b = faults.schedule(7, 0, False), faults.schedule(7, 0, False)
        self.assertEqual(a, b)
        self.assertNotEqual(a, faults.schedule(8, 0, False))

    def test_quick_has_every_kind_once(self):
        kinds = [f["kind"] for f in faults.schedule(3, 0, False)]
        self.assertEqual(sorted(kinds), sorted(faults.KINDS))

    def test_only_replays_the_drawn_faults_earlier(self):
        full = faults.schedule(1135402852, 0, False)
        part = faults.only(full, [13, 14])
        self.assertEqual([f["id"] for f in part], [13, 14])
        self.assertEqual(part[0]["at"], 15.0)
        # Same draw (channel, duration, parameters), same spacing.
        for f, g in zip(part, [f for f in full if f["id"] in (13, 14)]):
            self.assertEqual({k: v for k, v in f.items() if k != "at"}, {k: v for k, v in g.items() if k != "at"})
        at = {f["id"]: f["at"] for f in full}
        self.assertAlmostEqual(part[1]["at"] - part[0]["at"], at[14] - at[13], places=6)
        with self.assertRaises(ValueError):
            faults.only(full, [99])

    def test_faults_on_one_channel_never_overlap(self):
        for f1 in (s := faults.schedule(11, 3600, True)):
            for f2 in s:
                if f1 is f2 or f1["at"] > f2["at"]:
                    continue
                c1 = set(faults.CHANNELS if f1["channel"] == "*" else f1["channel"].split("+"))
                c2 = set(faults.CHANNELS if f2["channel"] == "*" else f2["channel"].split("+"))
                if c1 & c2:
                    self.assertGreaterEqual(f2["at"], f1["at"] + f1["dur"], (f1, f2))


if __name__ == "__main__":
    unittest.main()
