#!/usr/bin/python3
"""Checks of the chaos judge's verdicts on made-up nonstopd logs, one per
way a fault can be mishandled: a judge that passes these could still be
wrong, one that fails them certainly is. Run by tests/chaos_quick.sh."""

import datetime
import os
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

    def test_hls_segments_are_neighbours_by_number(self):
        self.assertLess(judge._hls_key("segment-17-00009.ts"), judge._hls_key("segment-17-00010.ts"))
        self.assertLess(judge._hls_key("segment-17-00099.ts"), judge._hls_key("segment-18-00000.ts"))


if __name__ == "__main__":
    unittest.main(verbosity=1)
