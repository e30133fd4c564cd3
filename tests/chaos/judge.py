"""Judging a chaos run: what nonstopd logged, what the receivers got, what
the recordings hold; the fault matrix, the resource curves and the report.
"""

import datetime
import glob
import json
import os
import re
import subprocess
import time

import tsrecv
import world as W

ARRIVAL_BOUND = 0.5  # longest allowed pause in arrival at a receiver, s
FAILOVER_BOUND_MS = (W.TIMEOUT + W.FRAME) * 1000  # `timeout` + one frame
# Each fault kind's bound on what is measured outside nonstopd: from the
# harness's injection (its own clock) to the effect. Measured over 9 quick
# runs (4 of them with both cores kept busy), December 2026; the margin
# covers a loaded 2-core machine, not a broken path: a failover caught only
# by a later, slower mechanism would exceed it.
DETECT_BOUND_S = {
    # injection → switch away from the input on air (timeout 500 ms + one
    # frame + the path from the sender to the switch)
    "sender-kill": 1.0,  # measured 464–638 ms (11 faults)
    "sender-pause": 1.0,  # measured 463–682 ms (13)
    "garbage": 1.0,  # measured 473–532 ms (5)
    "multi": 1.0,  # its parts are sender faults
    # the sender's first stop comes 0.4–0.7 s after the injection
    "flapping": 1.7,  # measured 922–1258 ms (9)
}
DETECT_DEFAULT_S = 1.0
# injection → "output failed": the outputs' own 5 s bound + its check.
OUTPUT_DETECT_S = {
    "receiver-kill": 6.0,  # measured 5108–5151 ms (10)
    "receiver-stall": 6.0,  # measured 5087–5142 ms (9)
    # filesink reports a full disk when the kernel's write fails: measured
    # 310–1350 ms here, up to 9.9 s in the 2 h soak (reliability.md)
    "disk-full": 12.0,
}
# An encoder's error → the other instance on air (the drill's switched_ms):
# measured 1–35 ms (9); the stall timer (1 s) would be far beyond it.
ENCODER_SWITCH_MS = 250
# SIGKILL → every channel on air again (RestartSec 2 s + start-up):
# measured 2627–3457 ms (9).
DAEMON_BACK_S = 6.0
RETURN_SLACK = W.BACKOFF_MAX + 6.0  # restore → return, beyond return_after
OWN_WINDOW = 20.0  # an output's own outage: how long after the restore it may take
DAEMON_WINDOW = 25.0

# Kinds a quick run may leave out, and why; none so far: every kind runs on
# the project's machines (root, network namespaces, tmpfs).
SKIP_ALLOWED = {}

INPUTS = ["primary", "backup", "slate"]  # every chaos channel's, in priority order
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\S+Z)\s+(\w+)\s+(.*)$")
KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_log(path):
    """Every nonstopd log line as {t, level, msg, kv}."""
    out = []
    try:
        fh = open(path, errors="replace")
    except FileNotFoundError:
        return out
    with fh:
        for raw in fh:
            m = LINE.match(ANSI.sub("", raw.rstrip("\n")))
            if not m:
                continue
            t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
            rest = m.group(3)
            k = re.search(r"\s\w+=", rest)
            msg = rest[:k.start()] if k else rest
            kv = {a: b.strip('"') for a, b in KV.findall(rest[k.start():] if k else "")}
            out.append({"t": t, "level": m.group(2), "msg": msg.strip(), "kv": kv})
    return out


def read_jsonl(path):
    out = []
    try:
        with open(path) as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by a SIGKILL
    except FileNotFoundError:
        pass
    return out


class Facts:
    """The run's evidence, indexed for the judgements."""

    def __init__(self, c):
        self.log = parse_log(os.path.join(c.out, "nonstopd.log"))
        self.switches = [e for e in self.log if e["msg"].startswith("switched ")]
        self.recv = {key: read_jsonl(os.path.join(c.out, f"recv-{key[0]}-{key[1][4:]}.jsonl"))
                     for key in c.receivers}

    def lines(self, ch, msg_prefix, t0, t1, **kv):
        return [e for e in self.log if t0 <= e["t"] <= t1 and e["kv"].get("channel") == ch
                and e["msg"].startswith(msg_prefix) and all(e["kv"].get(k) == v for k, v in kv.items())]

    def holdoff(self, ch, inp, t):
        """The hold-off (s) INP was given when the channel last failed over
        away from it before T: return_after, doubled by flap damping."""
        hold = W.RETURN_AFTER
        for e in self.switches:
            if e["t"] > t + 1:
                break
            kv = e["kv"]
            if kv.get("channel") == ch and kv.get("from") == inp and "holdoff_ms" in kv:
                hold = float(kv["holdoff_ms"]) / 1000.0
        return hold

    def clean_since(self, ch, inp, t, until):
        """Start of INP's last clean window before UNTIL, at T or later: T,
        or the end of the last interruption nonstopd reported."""
        last = t
        for e in self.log:
            if e["t"] > until:
                break
            kv = e["kv"]
            if (e["t"] > last and kv.get("channel") == ch and kv.get("input") == inp
                    and e["msg"].startswith("input interrupted")):
                last = e["t"]
        return last

    def on_air(self, ch, t):
        cur = None
        for e in self.switches:
            if e["t"] > t:
                break
            if e["kv"].get("channel") == ch:
                cur = e["kv"].get("to")
        return cur

    def arrival(self, key, t0, t1, skip=()):
        """Longest arrival gap (s) at receiver KEY within [t0, t1], leaving
        out the windows SKIP (other faults' outages of this destination)."""
        worst = 0.0
        for e in self.recv.get(key, []):
            if e["ev"] == "sec" and t0 <= e["t"] <= t1:
                if not any(a <= e["t"] - 1 and e["t"] <= b for a, b in skip):
                    worst = max(worst, e.get("mx", 0) / 1000.0)
            elif e["ev"] == "gap" and e["t"] >= t0 and e["from"] <= t1:
                if not any(a <= e["t"] and e["from"] <= b for a, b in skip):
                    worst = max(worst, e["gap"])
        return worst

    def first_data(self, key, t0):
        for e in self.recv.get(key, []):
            if e["ev"] in ("first", "sec") and e["t"] >= t0 and (e["ev"] == "first" or e["bytes"] > 0):
                return e["t"]
        return None


def receivers_of(c, ch):
    return [k for k in c.receivers if k[0] == ch]


def judge_fault(c, fx, f):
    """Fills in detected / handled / figures / problems for one fault."""
    parts = f.get("parts") or [f]
    probs, det, fo, gap, ret, absorbed = [], [], [], 0.0, [], False
    for p in parts:
        if p.get("skipped"):
            continue
        kind, ch, ti, tr = p["kind"], p["channel"], p["t_inject"], p["t_restore"]
        tgt = p["targets"][0] if p["targets"] else ""
        if tgt.startswith("in:"):
            inp = tgt[3:]
            was = fx.on_air(ch, ti - 0.05)
            if kind in ("loss", "delay", "congestion", "format-change"):
                ev = (fx.lines(ch, "switched", ti, tr + 2, **{"from": inp})
                      + fx.lines(ch, "input lost", ti, tr + 2, input=inp)
                      + [e for e in fx.lines(ch, "", ti, tr + 2) if e["kv"].get("id") == inp
                         and e["level"] in ("WARN", "ERROR")]
                      + fx.lines(ch, "alarm raised", ti, tr + 2, input=inp))
                det.append(bool(ev) or None)  # None: no visible effect (not required)
                absorbed = absorbed or not ev
                sw = [e for e in fx.lines(ch, "switched", ti, tr + 2, **{"from": inp})
                      if e["kv"].get("reason") in ("stall", "all-lost")]
                if sw and was == inp:
                    fo.append(float(sw[0]["kv"].get("stalled_ms", 0)))
                    # A degraded link may recover during the fault: the
                    # return can come before the restore.
                    ret.append(_returned(fx, ch, inp, tr, probs, p, since=sw[0]["t"]))
                if kind == "format-change":
                    lost = fx.lines(ch, "input lost", ti, ti + 6, input=inp)
                    back = fx.lines(ch, "input restored", ti, ti + 15, input=inp)
                    if lost and not back:
                        probs.append(f"{ch}.{inp} did not take the new format")
                continue
            if was == inp:
                bound = DETECT_BOUND_S.get(kind, DETECT_DEFAULT_S)
                sw = fx.lines(ch, "switched", ti, ti + bound, **{"from": inp})
                if not sw:
                    det.append(False)
                    late = fx.lines(ch, "switched", ti, tr + 10, **{"from": inp})
                    probs.append(f"{ch}: no failover from {inp} within {bound:.2f} s of the fault (its bound)"
                                 + (f"; it came after {late[0]['t'] - ti:.2f} s" if late else ""))
                    continue
                det.append(True)
                stalled = float(sw[0]["kv"].get("stalled_ms", 0))
                fo.append(stalled)
                p["failover_ms"], p["detect_ms"] = stalled, round((sw[0]["t"] - ti) * 1000)
                if stalled > FAILOVER_BOUND_MS + 1:
                    probs.append(f"{ch}: failover after {stalled:.0f} ms of stall (bound {FAILOVER_BOUND_MS:.0f})")
                if kind == "flapping":
                    # The flapping ends with its last start of the sender,
                    # which may come before the fault's end.
                    tr = (p.get("flips") or [tr])[-1]
                    early = fx.lines(ch, "switched", ti, tr + fx.holdoff(ch, inp, tr) - 0.1, to=inp,
                                     reason="recovered")
                    if early:
                        probs.append(f"{ch}: returned to the flapping {inp} at +{early[0]['t'] - ti:.1f} s")
                ret.append(_returned(fx, ch, inp, tr, probs, p))
            else:
                ev = (fx.lines(ch, "input lost", ti, ti + 6, input=inp)
                      + fx.lines(ch, "input not receiving", ti, ti + 8, input=inp)
                      + fx.lines(ch, "switched", ti, ti + 6, **{"from": inp}))
                det.append(bool(ev))
                if not ev:
                    probs.append(f"{ch}: the loss of {inp} (off air) was not noticed within 6 s")
        elif tgt.startswith("out:"):
            out = tgt[4:]
            ev = fx.lines(ch, "output failed", ti, ti + OUTPUT_DETECT_S.get(kind, 12.0), output=out)
            det.append(bool(ev))
            if ev:
                p["detect_ms"] = round((ev[0]["t"] - ti) * 1000)
                if f["kind"] != "multi":  # a multi's figure is its inputs' failover
                    fo.append(p["detect_ms"])
            elif kind != "receiver-kill" or tr - ti > 6:
                probs.append(f"{ch}.{out}: the fault was not noticed")
            if (ch, tgt) in c.receivers:
                back = fx.first_data((ch, tgt), tr)
                if back is None or back - tr > OWN_WINDOW:
                    probs.append(f"{ch}.{out}: the receiver got nothing within {OWN_WINDOW:.0f} s of its return")
                else:
                    p["back_ms"] = round((back - tr) * 1000)
                    # The destination's outage: from the fault to data again
                    # (a killed receiver's successor starts a new log).
                    gap = max(gap, back - ti)
                gap = max(gap, fx.arrival((ch, tgt), ti, tr + OWN_WINDOW))
            else:  # the recording: video written after the disk emptied
                bound = W.BACKOFF_MAX * 2 + 5
                segs = [r for r in c.__dict__.get("segments", []) if r["group"] == f"{ch}.{out}"
                        and r.get("duration", 0) > 1 and r["end"] >= tr + 2 and r["end"] - r["duration"] <= tr + bound]
                if not segs:
                    probs.append(f"{ch}.{out}: nothing recorded within {bound:.0f} s of the disk emptying")
        elif tgt.startswith("enc:"):
            d = p.get("drill", {})
            ok = p.get("drill_exit") == 0 and d.get("passed") is True
            det.append(d.get("detected_ms", -1) >= 0)
            if d.get("switched_ms", -1) >= 0:
                fo.append(d["switched_ms"])
            if not ok:
                probs.append(f"{ch}: encoder-fail drill did not pass: {json.dumps(d)[:200]}")
            elif d.get("switched_ms", -1) > ENCODER_SWITCH_MS:
                probs.append(f"{ch}: the encoder's failover took {d['switched_ms']} ms "
                             f"(bound {ENCODER_SWITCH_MS} ms: its error path, not a stall timer)")
        elif tgt == "nonstopd":
            lives = [x for x in c.daemon.lives if ti <= x["started"] <= ti + 5]
            det.append(bool(lives))
            if not lives:
                probs.append("nonstopd was not restarted within 5 s of its SIGKILL")
                continue
            # On air again: every channel's first switch of the new life.
            firsts = [next((e["t"] for e in fx.switches if e["t"] >= lives[0]["started"]
                            and e["kv"].get("channel") == ch2), None) for ch2 in ("alpha", "bravo", "charlie")]
            up = None if None in firsts else max(firsts)
            if up is None or up - ti > DAEMON_BACK_S:
                probs.append(f"the channels were not back on air within {DAEMON_BACK_S:.0f} s of the SIGKILL"
                             + ("" if up is None else f" ({up - ti:.2f} s)"))
            else:
                fo.append(round((up - ti) * 1000))
            p["outage_s"] = {}
            for key in c.receivers:
                back = fx.first_data(key, lives[0]["started"])
                if back is None or back - ti > DAEMON_WINDOW:
                    probs.append(f"{key[0]}.{key[1][4:]}: no data within {DAEMON_WINDOW:.0f} s of the SIGKILL")
                else:
                    p["outage_s"][f"{key[0]}.{key[1][4:]}"] = round(back - ti, 2)
                gap = max(gap, fx.arrival(key, ti, ti + DAEMON_WINDOW))
    # What the channels' other outputs saw during the fault.
    chans = {p["channel"] for p in parts} - {"*"}
    own = {(p["channel"], p["targets"][0]) for p in parts if p["targets"] and p["targets"][0].startswith("out:")}
    end = f["t_restore"] + F_REST()
    win = exclusions(c)
    for ch in chans:
        for key in receivers_of(c, ch):
            # Another fault's outage of this destination is not this one's.
            if key not in own:
                gap = max(gap, fx.arrival(key, f["t_inject"], end, win[key]))
    f["detected"] = det
    f["failover_ms"] = max(fo) if fo else None
    f["gap_s"] = round(gap, 3)
    f["returned_s"] = max([r for r in ret if r is not None], default=None)
    f["absorbed"] = absorbed
    f["problems"] = probs
    return f


def F_REST():
    import faults
    return faults.REST


def _returned(fx, ch, inp, tr, probs, p, since=None):
    """The channel came back to INP after the fault restored at TR. A
    voluntary return (`recovered`) must wait `return_after`; a switch to it
    because the input on air stalled may come at once."""
    # Back to INP, or to a better input that recovered meanwhile. The wait
    # is the hold-off nonstopd gave INP when it left it (flap damping),
    # counted from the restore or from the end of the last interruption
    # nonstopd reported after it (a source hiccup restarts the clean window).
    hold = fx.holdoff(ch, inp, tr)
    better = INPUTS[:INPUTS.index(inp) + 1]
    clean = tr
    while True:
        deadline = clean + hold + RETURN_SLACK
        back = [e for e in fx.lines(ch, "switched", tr - 0.5 if since is None else since, deadline)
                if e["kv"].get("to") in better]
        later = fx.clean_since(ch, inp, tr, back[0]["t"] if back else deadline)
        if later <= clean:
            break
        clean = later
    if not back:
        probs.append(f"{ch}: did not return to {inp} within {hold + RETURN_SLACK:.0f} s of its restore"
                     + (f" (interrupted last at +{clean - tr:.1f} s)" if clean > tr else ""))
        return None
    r = back[0]["t"] - tr
    p["return_s"] = round(r, 2)
    if since is None and back[0]["kv"].get("reason") == "recovered" and back[0]["t"] - clean < hold - 0.1:
        probs.append(f"{ch}: returned to {inp} {back[0]['t'] - clean:.2f} s after its "
                     + ("restore" if clean == tr else "last interruption") + f", before its hold-off ({hold:.0f} s)")
    return round(r, 2)


def exclusions(c):
    """Per receiver, the windows where a pause is the fault's own doing:
    from the fault to OWN_WINDOW after the restore. (Data right after the
    restore does not end it: a receiver resumed from SIGSTOP first drains
    what its socket held, then waits out SRT's peer timeout before the
    output's new connection is accepted.)"""
    win = {k: [] for k in c.receivers}
    for f in c.records:
        for p in f.get("parts") or [f]:
            if p.get("skipped"):
                continue
            tgt = p["targets"][0] if p["targets"] else ""
            if tgt == "nonstopd":
                for k in win:
                    win[k].append((p["t_inject"] - 1, p["t_inject"] + DAEMON_WINDOW))
            elif (p["channel"], tgt) in win:
                win[(p["channel"], tgt)].append((p["t_inject"] - 1, p["t_restore"] + OWN_WINDOW))
    return win


def continuity(c, fx):
    """Every pause in arrival beyond the bound, and every PTS step that is
    not one frame, outside the outputs' own faults: (receiver, event)."""
    bad = []
    win = exclusions(c)
    for key, evs in fx.recv.items():
        for e in evs:
            if e["ev"] == "gap" and e["gap"] > ARRIVAL_BOUND:
                t0, t1 = e["from"], e["t"]
            elif e["ev"] == "pts":
                t0 = t1 = e["t"]
            else:
                continue
            if not any(a <= t0 and t1 <= b for a, b in win[key]):
                bad.append((key, e))
    return bad


def _decode_errors(path, skip_tail=False):
    args = ["nice", "-n", "19", "ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-"]
    r = subprocess.run(args, capture_output=True, text=True)
    errs = [x for x in r.stderr.splitlines() if x.strip()]
    return errs


def _ffprobe_pts(path):
    r = subprocess.run(["nice", "-n", "19", "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time",
                        "-of", "csv=p=0", path], capture_output=True, text=True)
    return sorted(float(x.strip(",")) for x in r.stdout.split() if x.strip(",") not in ("", "N/A"))


def _cut_by_fault(c, t0, t1, group):
    for f in c.records:
        for p in f.get("parts") or [f]:
            mine = p.get("kind") == "daemon-kill" or (p.get("kind") == "disk-full" and group == "alpha.rec")
            if mine and not p.get("skipped"):
                if p["t_inject"] - 2 <= t1 and t0 <= p["t_restore"] + 5:
                    return p["kind"]
    return None


def keep_hls(c):
    """Hard-links every HLS segment that appeared into hls-keep/, so the
    judge reads it even after nonstopd deleted it. Cheap (no data copied):
    the harness calls it every watch period. Returns the folder."""
    hls, keep = os.path.join(c.out, "hls-bravo"), os.path.join(c.out, "hls-keep")
    os.makedirs(keep, exist_ok=True)
    done = c.__dict__.setdefault("kept", set())
    for src in glob.glob(os.path.join(hls, "segment-*.ts")):
        name = os.path.basename(src)
        if name not in done:
            try:
                os.link(src, os.path.join(keep, name))
            except FileExistsError:
                pass
            except FileNotFoundError:
                continue  # deleted meanwhile: judged missing if it was listed
            done.add(name)
    return keep


def _hls_key(name):
    """(stream, sequence number) of hlssink2's segment-STREAM-NNNNN.ts."""
    m = re.fullmatch(r"segment-(\d+)-(\d+)\.ts", name)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def check_segments(c, final):
    """Checks every finished recording segment and HLS segment once."""
    seen = c.__dict__.setdefault("checked", {})
    results = c.__dict__.setdefault("segments", [])
    groups = [("alpha.rec", os.path.join(c.out, "rec-alpha"), "alpha*.ts", True),
              ("charlie.rec", os.path.join(c.out, "rec-charlie"), "charlie*.mp4", False)]
    for name, d, pat, delete in groups:
        files = sorted(glob.glob(os.path.join(d, pat)), key=os.path.getmtime)
        finished = files if final else files[:-1]
        for path in finished:
            # Judged once the fault that may have cut it is on record.
            if path in seen or (not final and os.path.getmtime(path) > time.time() - 40):
                continue
            seen[path] = True
            st = os.stat(path)
            r = {"group": name, "file": os.path.basename(path), "bytes": st.st_size, "end": st.st_mtime}
            if path.endswith(".ts"):
                pts, anomalies = tsrecv.scan_file(path)
            else:
                pts = _ffprobe_pts(path)
                anomalies = [b - a for a, b in zip(pts, pts[1:]) if abs(b - a - W.FRAME) > 0.002]
            r["duration"] = round(pts[-1] - pts[0] + W.FRAME, 2) if pts else 0.0
            r["pts_anomalies"] = len(anomalies)
            r["decode_errors"] = len(_decode_errors(path)) if st.st_size else 0
            r["cut_by"] = _cut_by_fault(c, st.st_mtime - r["duration"], st.st_mtime, name)
            r["last"] = final and path == files[-1]
            problems = []
            if not r["cut_by"] and not r["last"]:
                seg = W.SEGMENT if name == "alpha.rec" else 30
                if r["duration"] < seg - 1.5:
                    problems.append(f"short: {r['duration']} s of {seg} s")
                if r["pts_anomalies"]:
                    problems.append(f"{r['pts_anomalies']} PTS steps that are not one frame")
                if r["decode_errors"]:
                    problems.append(f"{r['decode_errors']} decode errors")
            elif st.st_size and not pts and r["cut_by"] != "disk-full":
                problems.append("unreadable")
            r["problems"] = problems
            results.append(r)
            if delete and not final:
                # Not while a disk-full fault is on: the archiver would free
                # the room the fault took. Deleted at a later pass then.
                pending = c.__dict__.setdefault("to_delete", [])
                pending.append(path)
                if not c.__dict__.get("disk_full"):
                    for old in pending:
                        if os.path.exists(old):
                            os.remove(old)
                    pending.clear()
    # HLS: every segment the playlist named is whole. They are judged from
    # the hard links keep_hls() made as they appeared: nonstopd deletes a
    # segment ~20 s after it leaves the playlist (max-files), which a slow
    # pass (decoding recordings on a loaded box) could outlast.
    hls = os.path.join(c.out, "hls-bravo")
    keep = keep_hls(c)
    try:
        with open(os.path.join(hls, "index.m3u8")) as fh:
            listed = [x.strip() for x in fh if x.strip() and not x.startswith("#")]
    except FileNotFoundError:
        listed = []
        if final:
            c.notes.append("bravo's HLS playlist (index.m3u8) was never written")
    for name in listed:
        if not os.path.exists(os.path.join(keep, name)) and os.path.join(hls, name) not in seen:
            seen[os.path.join(hls, name)] = True
            results.append({"group": "bravo.hls", "file": name,
                            "problems": ["listed in the playlist but missing"]})
    kept = sorted((os.path.basename(x) for x in glob.glob(os.path.join(keep, "segment-*.ts"))), key=_hls_key)
    # The newest may still be written (unless nonstopd has stopped).
    for name in kept[:-1] if not final else kept:
        path = os.path.join(hls, name)
        if path in seen:
            continue
        seen[path] = True
        kpath = os.path.join(keep, name)
        r = {"group": "bravo.hls", "file": name, "problems": []}
        pts, anomalies = tsrecv.scan_file(kpath)
        r["duration"] = round(pts[-1] - pts[0] + W.FRAME, 2) if pts else 0.0
        r["pts_anomalies"] = len(anomalies)
        r["decode_errors"] = len(_decode_errors(kpath))
        r["first_pts"], r["last_pts"] = (pts[0], pts[-1]) if pts else (None, None)
        r["end"] = os.stat(kpath).st_mtime
        r["cut_by"] = _cut_by_fault(c, r["end"] - r["duration"], r["end"], "bravo.hls")
        # The last one ends where nonstopd was stopped.
        r["last"] = final and name == kept[-1]
        if not r["cut_by"] and not r["last"]:
            if r["pts_anomalies"] or r["decode_errors"]:
                r["problems"].append(f"{r['pts_anomalies']} PTS anomalies, {r['decode_errors']} decode errors")
            if not 0.9 <= r["duration"] <= 3.1:
                r["problems"].append(f"duration {r['duration']} s (target 2 s)")
        if c.soak:
            os.remove(kpath)  # judged: a soak's disk stays bounded
        results.append(r)


def resources(c):
    rows = []
    with open(os.path.join(c.out, "resources.csv")) as fh:
        next(fh)
        for line in fh:
            t, pid, rss, fds, thr, cpu = line.strip().split(",")
            rows.append((float(t), int(pid), float(rss), int(fds), int(thr), float(cpu)))
    return rows


def _slope(xs, ys):
    n = len(xs)
    if n < 3:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def resource_verdict(c, rows):
    """Bounded RSS and fds, no growth trend, per nonstopd process."""
    out, probs = [], []
    warm = 60.0
    for pid in dict.fromkeys(r[1] for r in rows):
        life = [r for r in rows if r[1] == pid]
        steady = [r for r in life if r[0] - life[0][0] >= warm]
        if len(steady) < 5:
            continue
        span = steady[-1][0] - steady[0][0]
        rss0, fds0 = steady[0][2], steady[0][3]
        rss_max, fds_max = max(r[2] for r in steady), max(r[3] for r in steady)
        slope_h = _slope([r[0] for r in steady], [r[2] for r in steady]) * 3600
        fd_slope_h = _slope([r[0] for r in steady], [r[3] for r in steady]) * 3600
        q = len(steady) // 4
        grow = (sorted(r[2] for r in steady[-q:])[q // 2] - sorted(r[2] for r in steady[q:2 * q])[q // 2]) if q >= 3 else 0.0
        d = {"pid": pid, "minutes": round(span / 60, 1), "rss_start_mb": rss0, "rss_max_mb": rss_max,
             "rss_slope_mb_h": round(slope_h, 1), "rss_late_growth_mb": round(grow, 1),
             "fds_start": fds0, "fds_max": fds_max, "fds_slope_h": round(fd_slope_h, 1),
             "cpu_mean_pct": round(sum(r[5] for r in steady) / len(steady), 1)}  # steady: never a first sample
        out.append(d)
        if fds_max > fds0 + 64:
            probs.append(f"nonstopd {pid}: open fds grew from {fds0} to {fds_max}")
        if rss_max > 1.5 * rss0 + 50:
            probs.append(f"nonstopd {pid}: RSS grew from {rss0:.0f} to {rss_max:.0f} MB")
        if span >= 1200 and grow > max(20.0, 0.08 * rss0):
            probs.append(f"nonstopd {pid}: RSS still growing late in its life (+{grow:.0f} MB between the "
                         f"second and the last quarter of {span / 60:.0f} min)")
    return out, probs


def plot(c, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return False
    t0 = c.t0
    fig, ax = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True)
    x = [(r[0] - t0) / 60 for r in rows]
    pids = [r[1] for r in rows]
    series = [(2, "RSS (MB)"), (3, "open fds"), (5, "CPU (% of a core)")]
    for a, (i, label) in zip(ax, series):
        # One line per nonstopd process: a SIGKILL starts a new one.
        for pid in dict.fromkeys(pids):
            xs = [xx for xx, r in zip(x, rows) if r[1] == pid]
            ys = [r[i] for r in rows if r[1] == pid]
            if i == 5:  # a process's first sample has no CPU figure yet
                xs, ys = xs[1:], ys[1:]
            a.plot(xs, ys, lw=1, color="tab:blue")
        a.set_ylabel(label)
        a.grid(alpha=0.3)
        for f in c.records:
            if f["kind"] == "daemon-kill":
                a.axvline((f["t_inject"] - t0) / 60, color="tab:red", lw=1, alpha=0.7)
        a.set_ylim(bottom=0)
    ax[0].set_title(f"nonstopd under chaos: seed {c.seed}, {len(c.records)} faults "
                    f"(red: SIGKILL of nonstopd, restarted)")
    ax[-1].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def matrix(records):
    rows = {}
    for f in records:
        for p in ([f] if f["kind"] != "multi" else [f]):
            k = p["kind"]
            r = rows.setdefault(k, {"injected": 0, "skipped": 0, "detected": 0, "visible": 0, "handled": 0,
                                    "failover": None, "gap": 0.0, "ret": None})
            if f.get("skipped"):
                r["skipped"] += 1
                continue
            r["injected"] += 1
            d = f.get("detected", [])
            if d and all(x is not False for x in d):
                r["detected"] += 1
            if any(x for x in d):
                r["visible"] += 1
            if not f.get("problems"):
                r["handled"] += 1
            if f.get("failover_ms") is not None:
                r["failover"] = max(r["failover"] or 0, f["failover_ms"])
            r["gap"] = max(r["gap"], f.get("gap_s") or 0.0)
            if f.get("returned_s") is not None:
                r["ret"] = max(r["ret"] or 0, f["returned_s"])
    return rows


MEANING = {
    "sender-kill": "a sender killed (SIGKILL), restarted after the fault",
    "sender-pause": "a sender frozen (SIGSTOP), then resumed (SIGCONT)",
    "garbage": "a UDP sender replaced by random bytes",
    "format-change": "a UDP sender replaced by one with another size, frame rate and audio layout",
    "loss": "packet loss on the lossy link (netem, or the relay where the kernel lacks netem)",
    "delay": "delay and jitter on the lossy link (netem or the relay)",
    "congestion": "the lossy link's rate below the stream's (tbf in the network namespace)",
    "receiver-kill": "an SRT output's receiver killed, restarted after the fault",
    "receiver-stall": "an SRT output's receiver frozen (SIGSTOP) longer than the outputs' 5 s bound",
    "disk-full": "the tmpfs under a recording filled to the last byte",
    "encoder-fail": "the encoder instance on air fails (D-Bus drill: a real encoder error)",
    "flapping": "a primary up and down faster than return_after",
    "multi": "both inputs of a channel (the slate goes on air) and a fault on another channel at once",
    "daemon-kill": "SIGKILL of nonstopd; restarted 2 s later as systemd would",
}
FAILOVER_MEANING = {
    "receiver-kill": "output failed", "receiver-stall": "output failed", "disk-full": "output failed",
    "encoder-fail": "other instance on air", "daemon-kill": "SIGKILL → on air again",
}


def replay(soak, length, seed, only):
    """The command that replays a run (printed by the harness, and in the
    report)."""
    return (f"scripts/chaos {'--soak %ds' % length if soak else '--quick'} --seed {seed}"
            + (f" --only {','.join(map(str, only))}" if only else ""))


def report(c, final):
    """Judges the run so far; writes report.md, faults.json and
    resources.png. Returns True when everything held."""
    fx = Facts(c)
    if not final:
        check_segments(c, final)
    with c.lock:
        # A soak's interim report judges faults whose recovery is over.
        horizon = time.time() - 60 if not final else float("inf")
        records = [judge_fault(c, fx, f) for f in sorted(c.records, key=lambda f: f["id"])
                   if f["t_restore"] < horizon]
    bad = continuity(c, fx)
    problems = []
    for key, e in bad:
        when = e.get("from", e["t"])
        during = [f"{f['id']}:{f['kind']}" for f in records if f["t_inject"] - 1 <= when <= f["t_restore"] + 15]
        what = f"paused {e['gap']:.2f} s" if e["ev"] == "gap" else f"PTS step {e['step'] * 1000:.0f} ms"
        problems.append(f"output {key[0]}.{key[1][4:]}: {what} at +{when - c.t0:.1f} s "
                        f"(faults then: {', '.join(during) or 'none'})")
    for f in records:
        for p in f["problems"]:
            problems.append(f"fault {f['id']} {f['kind']} at +{f['t_inject'] - c.t0:.1f} s: {p}")
    crashes = [x for x in c.daemon.lives if x["ended"] and not x["expected"]]
    for x in crashes:
        problems.append(f"nonstopd {x['pid']} died on its own (status {x['status']}) at +{x['ended'] - c.t0:.1f} s")
    panics = [e for e in fx.log if "panicked" in e["msg"]]
    problems += [f"panic: {e['msg'][:200]}" for e in panics]
    rebuilt = [e for e in fx.log if e["msg"].startswith("channel pipeline failed")]
    problems += [f"{e['kv'].get('channel')}: channel pipeline rebuilt at +{e['t'] - c.t0:.1f} s" for e in rebuilt]
    api_down = [t for t, s in c.api if s is None and not any(
        f["kind"] == "daemon-kill" and f["t_inject"] - 1 <= t <= f["t_inject"] + DAEMON_WINDOW for f in records)]
    if api_down:
        problems.append(f"/api/status did not answer {len(api_down)} times outside the SIGKILL windows "
                        f"(first at +{api_down[0] - c.t0:.1f} s)")
    if final and getattr(c, "exit_status", 0) != 0:
        problems.append(f"nonstopd exited with {c.exit_status} on SIGTERM")
    segs = c.__dict__.get("segments", [])
    if final:  # every kind of recording was really checked
        for g in ("alpha.rec", "charlie.rec", "bravo.hls"):
            if not any(r["group"] == g for r in segs):
                problems.append(f"no {g} segment was checked")
    for r in segs:
        for p in r["problems"]:
            problems.append(f"recording {r['group']} {r['file']}: {p}")
    # HLS continuity across segments (outside SIGKILL windows).
    hls = sorted((r for r in segs if r["group"] == "bravo.hls" and r.get("first_pts") is not None),
                 key=lambda r: _hls_key(r["file"]))
    for a, b in zip(hls, hls[1:]):
        (sa, na), (sb, nb) = _hls_key(a["file"]), _hls_key(b["file"])
        if sa != sb or nb != na + 1:
            # Not neighbours: a new stream (nonstopd restarted), or segments
            # that were gone before a pass read them (said below).
            if sa == sb:
                problems.append(f"HLS segments {na + 1}–{nb - 1} were deleted before the judge read them")
            continue
        step = b["first_pts"] - a["last_pts"]
        if abs(step - W.FRAME) > 0.002 and not (a.get("cut_by") or b.get("cut_by")):
            problems.append(f"HLS {a['file']} → {b['file']}: PTS step {step * 1000:.0f} ms")
    problems += [f"judge: {e}" for e in c.__dict__.get("judge_errors", [])]
    rows = resources(c)
    res, rprobs = resource_verdict(c, rows)
    if final:
        problems += rprobs
        # A quick run stands for every kind: one not injected is a hole in
        # the proof, not a pass (a soak draws kinds at random).
        if not c.soak and not getattr(c, "only", None):
            import faults
            done = {f["kind"] for f in records if not f.get("skipped")}
            done |= {p["kind"] for f in records for p in (f.get("parts") or []) if not p.get("skipped")}
            for kind in faults.KINDS:
                if kind not in done and kind not in SKIP_ALLOWED:
                    problems.append(f"fault kind {kind} was not injected (see the notes)")
    png = os.path.join(c.out, "resources.png")
    plot(c, rows, png)
    m = matrix(records)
    ok = not problems

    now = rows[-1][0] if rows else c.t0
    md = [f"# Chaos run, seed {c.seed}", "",
          f"- mode: {'soak' if c.soak else 'quick'}; {'finished' if final else 'in progress'}; "
          f"{(now - c.t0) / 60:.1f} of {c.length / 60:.1f} min; started "
          f"{datetime.datetime.fromtimestamp(c.t0, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
          f"- replay: `{replay(c.soak, c.length, c.seed, getattr(c, 'only', None))}`",
          f"- verdict: **{'PASS' if ok else 'FAIL'}** ({len(problems)} problems)", "",
          "## Fault matrix", "",
          "| fault | injected | detected | handled | worst failover | worst output gap | worst return |",
          "| --- | --- | --- | --- | --- | --- | --- |"]
    import faults as FK
    for k in FK.KINDS:
        r = m.get(k)
        if not r:
            continue
        fo = "—" if r["failover"] is None else f"{r['failover']:.0f} ms"
        if r["failover"] is not None and k in FAILOVER_MEANING:
            fo += f" ({FAILOVER_MEANING[k]})"
        det = f"{r['detected']}" + (f" ({r['visible']} visible)" if k in ("loss", "delay", "congestion", "format-change") else "")
        md.append(f"| {k} | {r['injected']}" + (f" (+{r['skipped']} skipped)" if r["skipped"] else "")
                  + f" | {det} | {r['handled']} | {fo} | {r['gap']:.2f} s | "
                  + ("—" if r["ret"] is None else f"{r['ret']:.1f} s") + " |")
    md += ["", "Failover: for an input, the stall the switch measured before it cut "
           f"(bound: `timeout` + one frame = {FAILOVER_BOUND_MS:.0f} ms); otherwise as noted. "
           "Output gap: the longest pause in arrival at the channel's receivers during the fault "
           "(an output's own destination included: its outage). Return: restore → back on the primary "
           f"(return_after = {W.RETURN_AFTER:.0f} s; a failover within {W.FLAP_WINDOW:.0f} s of the last one "
           f"doubles it, up to {W.MAX_RETURN_AFTER:.0f} s).", ""]
    md += ["## Problems", ""] + ([f"- {p}" for p in problems] or ["none"]) + [""]
    md += ["## Recordings", ""]
    for g in ("alpha.rec", "charlie.rec", "bravo.hls"):
        rs = [r for r in segs if r["group"] == g]
        if rs:
            md.append(f"- {g}: {len(rs)} segments checked, {sum(1 for r in rs if r.get('cut_by'))} cut by a fault "
                      f"(disk full or SIGKILL), {sum(1 for r in rs if r['problems'])} with problems, "
                      f"{sum(r.get('duration', 0) for r in rs) / 60:.1f} min of video")
    md += ["", "## Resources (nonstopd)", "", "![resources](resources.png)", "",
           "| pid | minutes | RSS start → max (MB) | RSS trend (MB/h) | fds start → max | fd trend (/h) | CPU mean |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for d in res:
        md.append(f"| {d['pid']} | {d['minutes']} | {d['rss_start_mb']:.0f} → {d['rss_max_mb']:.0f} | "
                  f"{d['rss_slope_mb_h']:+.1f} | {d['fds_start']} → {d['fds_max']} | {d['fds_slope_h']:+.1f} | "
                  f"{d['cpu_mean_pct']:.0f} % |")
    md += ["", "## Notes", ""] + ([f"- {n}" for n in c.notes] or ["none"]) + [""]
    md += ["## Faults", "", "| # | at | kind | where | what | failover | gap | return | problems |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for f in records:
        where = f["channel"] + (" " + ",".join(f["targets"]) if f["targets"] else "")
        if f["kind"] == "multi":
            where = "; ".join(f"{p['kind']} {p['channel']} {p['targets'][0]}" for p in f["parts"])
        if f.get("outage_s"):
            where += " (outputs back after: " + ", ".join(f"{k} {v:.1f} s" for k, v in f["outage_s"].items()) + ")"
        md.append(f"| {f['id']} | +{f['t_inject'] - c.t0:.1f} s | {f['kind']} | {where} | "
                  f"{json.dumps(f['params']) if f['params'] else ''} {f['dur']:g} s | "
                  f"{'' if f['failover_ms'] is None else '%.0f ms' % f['failover_ms']} | {f['gap_s']:.2f} s | "
                  f"{'' if f['returned_s'] is None else '%.1f s' % f['returned_s']} | "
                  f"{'; '.join(f['problems'])} |")
    with open(os.path.join(c.out, "report.md"), "w") as fh:
        fh.write("\n".join(md) + "\n")
    with open(os.path.join(c.out, "faults.json"), "w") as fh:
        json.dump({"seed": c.seed, "matrix": m, "faults": records, "problems": problems,
                   "resources": res, "segments": segs}, fh, indent=1, default=str)
    if final:
        print("\n".join(md[:md.index("## Recordings")]), flush=True)
    return ok
