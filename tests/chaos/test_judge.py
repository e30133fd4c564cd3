#!/usr/bin/python3
"""Checks of the chaos judge's verdicts on made-up nonstopd logs, one per
way a fault can be mishandled: a judge that passes these could still be
wrong, one that fails them certainly is. Run by tests/chaos_quick.sh."""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import judge  # noqa: E402
import world as W  # noqa: E402

T0 = 1_800_000_000.0  # the fault's injection, in epoch seconds


def line(t, level, msg, **kv):
    stamp = datetime.datetime.fromtimestamp(T0 + t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = " ".join(f"{k}={v}" for k, v in kv.items())
    return f"{stamp}  {level} {msg} {fields}\n"


def switched(t, frm, to, reason, **kv):
    level = "WARN" if reason in ("stall", "all-lost") else "INFO"
    return line(t, level, f"switched {frm} → {to}", channel="bravo", **{"from": frm}, to=to, reason=reason, **kv)


def interrupted(t):
    return line(t, "INFO", "input interrupted; its return waits again", channel="bravo", input="primary",
                media='"v"', gap_ms=180)


class Judge(unittest.TestCase):
    def verdict(self, lines, kind="sender-kill", restore=5.0, **extra):
        """The judge's problems for one fault on bravo's primary, on air
        before it, given nonstopd's log LINES."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "nonstopd.log"), "w") as fh:
                fh.write(line(-60, "INFO", "switched none → primary", channel="bravo", **{"from": "none"},
                              to="primary", reason="start"))
                fh.writelines(lines)
            c = types.SimpleNamespace(out=d, receivers=[], records=[], daemon=types.SimpleNamespace(lives=[]))
            fx = judge.Facts(c)
            f = {"kind": kind, "channel": "bravo", "targets": ["in:primary"], "t_inject": T0,
                 "t_restore": T0 + restore, "params": {}, **extra}
            return judge.judge_fault(c, fx, f)["problems"]

    def test_a_clean_failover_and_return_pass(self):
        probs = self.verdict([switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=3000),
                              switched(8.2, "backup", "primary", "recovered")])
        self.assertEqual(probs, [])

    def test_a_failover_that_was_too_slow(self):
        probs = self.verdict([switched(0.9, "primary", "backup", "stall", stalled_ms=880, holdoff_ms=3000),
                              switched(8.2, "backup", "primary", "recovered")])
        self.assertEqual(len(probs), 1, probs)
        self.assertIn("failover after 880 ms of stall", probs[0])

    def test_a_failover_the_daemon_timed_well_but_that_came_late_from_outside(self):
        # nonstopd says it cut after 520 ms of stall, but the switch came
        # 1.3 s after the sender was killed: the path to the switch lagged.
        probs = self.verdict([switched(1.3, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=3000),
                              switched(8.2, "backup", "primary", "recovered")])
        self.assertEqual(len(probs), 1, probs)
        self.assertIn("within 1.00 s of the fault (its bound); it came after 1.30 s", probs[0])

    def test_an_encoder_failover_caught_by_a_timer_not_its_error(self):
        def enc(switched_ms):
            with tempfile.TemporaryDirectory() as d:
                open(os.path.join(d, "nonstopd.log"), "w").close()
                c = types.SimpleNamespace(out=d, receivers=[], records=[], daemon=types.SimpleNamespace(lives=[]))
                f = {"kind": "encoder-fail", "channel": "alpha", "targets": ["enc:video"], "t_inject": T0,
                     "t_restore": T0 + 5, "params": {}, "drill_exit": 0,
                     "drill": {"passed": True, "detected_ms": 3, "switched_ms": switched_ms}}
                return judge.judge_fault(c, judge.Facts(c), f)["problems"]
        self.assertEqual(enc(27), [])
        self.assertIn("the encoder's failover took 1040 ms", enc(1040)[0])

    def test_no_failover_at_all(self):
        probs = self.verdict([])
        self.assertIn("no failover from primary", probs[0])

    def test_a_return_before_the_hold_off(self):
        probs = self.verdict([switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=3000),
                              switched(6.0, "backup", "primary", "recovered")])
        self.assertEqual(len(probs), 1, probs)
        self.assertIn("before its hold-off (3 s)", probs[0])

    def test_a_damped_hold_off_is_waited_for(self):
        ok = self.verdict([switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=6000),
                           switched(11.2, "backup", "primary", "recovered")])
        self.assertEqual(ok, [])
        early = self.verdict([switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=6000),
                              switched(9.0, "backup", "primary", "recovered")])
        self.assertIn("before its hold-off (6 s)", early[0])

    def test_the_hold_off_counts_from_the_last_interruption(self):
        # Back 3.1 s after a hole at +7 s: right. 3.1 s after the restore
        # but 1.1 s after a hole: too early.
        ok = self.verdict([switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=3000),
                           interrupted(7.0), switched(10.1, "backup", "primary", "recovered")])
        self.assertEqual(ok, [])
        early = self.verdict([switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=3000),
                              interrupted(7.0), switched(8.1, "backup", "primary", "recovered")])
        self.assertIn("after its last interruption, before its hold-off", early[0])

    def test_never_back(self):
        probs = self.verdict([switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=3000)])
        self.assertIn("did not return to primary", probs[0])

    def test_a_flapping_source_returned_to_while_it_flaps(self):
        flips = [T0 + 1.0 + 0.6 * i for i in range(12)]  # the sender restarted until +7.6 s
        lines = [switched(0.53, "primary", "backup", "stall", stalled_ms=520, holdoff_ms=3000),
                 switched(4.0, "backup", "primary", "recovered"),
                 switched(4.6, "primary", "backup", "stall", stalled_ms=515, holdoff_ms=6000),
                 switched(14.0, "backup", "primary", "recovered")]
        probs = self.verdict(lines, kind="flapping", restore=8.0, flips=flips)
        self.assertTrue(any("returned to the flapping primary" in p for p in probs), probs)
        ok = self.verdict([lines[0], switched(13.8, "backup", "primary", "recovered")], kind="flapping",
                          restore=8.0, flips=flips)
        self.assertEqual(ok, [])

    def judge_one(self, lines, kind, target, restore=5.0, receivers=None, lives=(), **extra):
        """The judge's record of one fault of KIND on bravo's TARGET."""
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "nonstopd.log"), "w") as fh:
                fh.write(line(-60, "INFO", "switched none → primary", channel="bravo", **{"from": "none"},
                              to="primary", reason="start"))
                fh.writelines(lines)
            for (ch, tgt), events in (receivers or {}).items():
                with open(os.path.join(d, f"recv-{ch}-{tgt[4:]}.jsonl"), "w") as fh:
                    fh.writelines(json.dumps({**e, "t": T0 + e["t"]}) + "\n" for e in events)
            c = types.SimpleNamespace(out=d, receivers=list(receivers or {}), records=[],
                                      daemon=types.SimpleNamespace(lives=list(lives)))
            f = {"kind": kind, "channel": "bravo", "targets": [target], "t_inject": T0,
                 "t_restore": T0 + restore, "params": {}, **extra}
            return judge.judge_fault(c, judge.Facts(c), f)

    def test_every_on_air_kind_is_held_to_its_own_bound(self):
        for kind, bound in [("sender-kill", 1.0), ("sender-pause", 1.0), ("garbage", 1.0), ("multi", 1.0)]:
            ok = self.judge_one([switched(bound - 0.1, "primary", "backup", "stall", stalled_ms=520,
                                          holdoff_ms=3000),
                                 switched(8.5, "backup", "primary", "recovered")], kind, "in:primary")
            self.assertEqual(ok["problems"], [], kind)
            late = self.judge_one([switched(bound + 0.2, "primary", "backup", "stall", stalled_ms=520,
                                            holdoff_ms=3000),
                                   switched(8.5, "backup", "primary", "recovered")], kind, "in:primary")
            self.assertIn(f"within {bound:.2f} s of the fault", late["problems"][0], kind)

    def test_a_degraded_link_may_be_absorbed_but_a_failover_must_come_back(self):
        for kind in ("loss", "delay", "congestion"):
            absorbed = self.judge_one([], kind, "in:primary")
            self.assertEqual(absorbed["problems"], [], kind)
            self.assertTrue(absorbed["absorbed"], kind)
            stuck = self.judge_one([switched(2.0, "primary", "backup", "stall", stalled_ms=530, holdoff_ms=3000)],
                                   kind, "in:primary")
            self.assertIn("did not return to primary", stuck["problems"][0], kind)
            slow = self.judge_one([switched(2.0, "primary", "backup", "stall", stalled_ms=700, holdoff_ms=3000),
                                   switched(9.0, "backup", "primary", "recovered")], kind, "in:primary")
            self.assertEqual(slow["failover_ms"], 700.0, kind)

    def test_a_format_change_the_input_never_took(self):
        lost = line(0.6, "WARN", "input lost; restarting", channel="bravo", input="primary", reason='"caps"')
        probs = self.judge_one([lost], "format-change", "in:primary")["problems"]
        self.assertTrue(any("did not take the new format" in p for p in probs), probs)
        back = line(2.0, "INFO", "input restored", channel="bravo", input="primary")
        probs = self.judge_one([lost, back], "format-change", "in:primary")["problems"]
        self.assertFalse(any("new format" in p for p in probs), probs)

    def test_an_output_fault_unnoticed_and_a_receiver_never_served_again(self):
        key = ("bravo", "out:srt")
        before = [{"ev": "start"}, {"ev": "first"}] + [{"ev": "sec", "bytes": 90000, "frames": 25, "mx": 50}]
        served = {key: [dict(e, t=-3.0 + i * 0.1) for i, e in enumerate(before)]
                  + [{"ev": "start", "t": 8.2}, {"ev": "first", "t": 8.6},
                     {"ev": "sec", "t": 9.6, "bytes": 90000, "frames": 25, "mx": 50}]}
        failed = line(5.1, "WARN", "output failed; restarting", channel="bravo", output="srt")
        ok = self.judge_one([failed], "receiver-kill", "out:srt", restore=8.0, receivers=served)
        self.assertEqual(ok["problems"], [])
        self.assertEqual(ok["failover_ms"], 5100)
        unnoticed = self.judge_one([], "receiver-kill", "out:srt", restore=8.0, receivers=served)
        self.assertIn("the fault was not noticed", unnoticed["problems"][0])
        too_late = self.judge_one([line(6.5, "WARN", "output failed; restarting", channel="bravo", output="srt")],
                                  "receiver-stall", "out:srt", restore=8.0, receivers=served)
        self.assertIn("the fault was not noticed", too_late["problems"][0])
        never = {key: [dict(e, t=-3.0 + i * 0.1) for i, e in enumerate(before)]}
        probs = self.judge_one([failed], "receiver-kill", "out:srt", restore=8.0, receivers=never)["problems"]
        self.assertIn("the receiver got nothing within 20 s of its return", probs[0])

    def test_a_daemon_back_on_air_too_slowly(self):
        def back(t):
            return [switched(t, "none", "primary", "start")] + [
                line(t, "INFO", "switched none → primary", channel=ch, **{"from": "none"}, to="primary",
                     reason="start") for ch in ("alpha", "charlie")]
        lives = [{"started": T0 + 2.1}]
        ok = self.judge_one(back(3.4), "daemon-kill", "nonstopd", restore=0.0, lives=lives)
        self.assertEqual(ok["problems"], [])
        slow = self.judge_one(back(7.5), "daemon-kill", "nonstopd", restore=0.0, lives=lives)
        self.assertIn("not back on air within 6 s of the SIGKILL (7.50 s)", slow["problems"][0])

    def test_a_recording_with_a_gap(self):
        # Two 21 s recordings made by ffmpeg: one whole, one with a 1 s
        # hole in its timestamps after 10 s.
        with tempfile.TemporaryDirectory() as d:
            rec = os.path.join(d, "rec-alpha")
            os.mkdir(rec)
            # (A third, the newest, is the one being written: not judged.)
            for name, shift in (("alpha-00001.ts", "0"), ("alpha-00002.ts", "gte(N\\,250)"),
                                ("alpha-00003.ts", "0")):
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
                                "-i", "testsrc=size=160x90:rate=25:duration=21",
                                "-vf", f"setpts=N/(25*TB)+{shift}/TB", "-c:v", "libx264", "-preset", "ultrafast",
                                "-g", "25", "-f", "mpegts", os.path.join(rec, name)], check=True)
            c = types.SimpleNamespace(out=d, records=[], notes=[], soak=False, receivers=[])
            judge.check_segments(c, final=True)
            found = {r["file"]: r["problems"] for r in c.segments}
            self.assertEqual(found.get("alpha-00001.ts"), [], found)
            self.assertTrue(any("PTS steps that are not one frame" in p for p in found.get("alpha-00002.ts", [])),
                            found)

    def test_hls_segments_are_neighbours_by_number(self):
        self.assertLess(judge._hls_key("segment-17-00009.ts"), judge._hls_key("segment-17-00010.ts"))
        self.assertLess(judge._hls_key("segment-17-00099.ts"), judge._hls_key("segment-18-00000.ts"))


if __name__ == "__main__":
    unittest.main(verbosity=1)
