#!/usr/bin/python3
"""The fleet's chaos harness, its Python half (tests/chaos/fleet.sh runs the
faults; docs/reliability.md, "The fleet"). Standard library only.

  fleet.py schedule --seed N --mode quick|soak [--length S] [--only IDS]
      The faults drawn from the seed, as JSON on stdout. Quick: one of each
      kind, shuffled. Soak: weighted random kinds, each after a random rest;
      the list is drawn one fault after another from random.Random(seed), so
      fault K is the same whatever the length.

  fleet.py get SCHEDULE ID
      One fault of a schedule as shell assignments (kind=..., p_phase=...).

  fleet.py phase --port P --ttl T --phase S (--signal SIG --pid PID | -- CMD...)
      Run inside a box's namespace: follows the box's lease renewals on its
      /metrics (nonstop_fleet_lease_remaining_seconds, published every 100 ms
      tick) and strikes S seconds after one was sent: sends SIG to PID or
      runs CMD. Prints t0 (epoch), phase_ms (strike - renewal send) and
      left_ms (until the box's fence deadline) as shell assignments.

  fleet.py check CAP --record FILE  (then judge.py check's arguments)
      judge.py's verdict on one window (tests/tools/fleet/judge.py, its rules
      unchanged), its figures appended to FILE as a JSON line.

  fleet.py end --dir DIR --id N --rc RC --log FILE
      Closes one fault: its schedule entry, what fleet.sh noted (info,
      fails.txt) and the verdicts, as one JSON line appended to FILE.

  fleet.py report --out DIR [--final]
      report.md from DIR/faults.jsonl: per kind count, gap p50/p99/max,
      overlaps, failures (each with its seed, index and replay command).
"""

import argparse
import importlib.util
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

TTL = 2.0  # [fleet] ttl in tests/tools/fleet/netns.bash's config
KEYFRAME = 1.0  # its keyframe_interval
# The bounds, as tests/fleet.sh sets them.
TAKEOVER = TTL + 0.5 + KEYFRAME  # leader death → new leader's first datagram
HANDOVER = 1.5  # drain, SIGTERM
ON_AIR_GAP = 0.5  # where nothing should change
SWITCHED_GAP = 1.0  # on the new leader after a switch
# The renewal period: TTL/3 after each answer, on the next 100 ms tick.
PERIOD = 0.7

KINDS = ["leader-kill", "leader-stop", "leader-cut-off", "drain", "etcd-member-kill",
         "leader-cut-etcd", "etcd-down", "rolling-restart", "standby-kill"]
WEIGHTS = {"leader-kill": 3, "leader-stop": 2, "leader-cut-off": 2, "drain": 2, "etcd-member-kill": 2,
           "leader-cut-etcd": 2, "etcd-down": 2, "rolling-restart": 1, "standby-kill": 1}
# What each kind is judged on, for the report.
SWITCHES = {"leader-kill", "leader-stop", "leader-cut-off", "drain"}


def _params(rng, kind, soak):
    """One fault's parameters. Durations in seconds."""
    u = lambda a, b: round(rng.uniform(a, b), 2)  # noqa: E731
    if kind == "leader-kill":
        return {"phase": u(0, PERIOD), "restart_after": u(0.5, 10 if soak else 4)}
    if kind == "leader-stop":
        # Longer than TTL + 1 s: the lease surely expires (+0.5 s lessor, +0.1 s read).
        return {"phase": u(0, PERIOD), "dur": u(TTL + 1, TTL + (10 if soak else 4))}
    if kind == "leader-cut-off":
        return {"phase": u(0, PERIOD), "dur": u(4.5, 20 if soak else 8)}
    if kind == "drain":
        return {"hold": u(3, 10 if soak else 5)}
    if kind == "etcd-member-kill":
        return {"member": rng.choice(["raft-leader", "follower"]), "follower": rng.randrange(2),
                "dur": u(1, 20 if soak else 8)}
    if kind == "leader-cut-etcd":
        return {"dur": u(3, 30 if soak else 10)}
    if kind == "etcd-down":
        return {"how": rng.choice(["kill", "stop"]), "dur": u(2, 20 if soak else 8)}
    if kind == "rolling-restart":
        return {"first": rng.choice(["leader", "standby"]), "pause": u(0, 3)}
    if kind == "standby-kill":
        return {"restart_after": u(0.5, 10 if soak else 5)}
    raise ValueError(kind)


def schedule(seed, soak, n):
    rng = random.Random(seed)
    out = []
    if soak:
        kinds = list(WEIGHTS)
        weights = [WEIGHTS[k] for k in kinds]
        for i in range(n):
            kind = rng.choices(kinds, weights=weights)[0]
            rest = round(min(rng.expovariate(1 / 5.0), 20.0), 2)
            out.append({"id": i + 1, "kind": kind, "rest": rest, "params": _params(rng, kind, True)})
    else:
        kinds = KINDS[:]
        rng.shuffle(kinds)
        for i, kind in enumerate(kinds):
            out.append({"id": i + 1, "kind": kind, "rest": 0.0, "params": _params(rng, kind, False)})
    return out


def cmd_schedule(a):
    soak = a.mode == "soak"
    # A soak's fault takes 15 s at least (the steady state before it, the
    # fault, the judge's window after it).
    n = int(a.length / 10) + 20 if soak else 0
    if a.only:
        n = max(n, max(a.only))
    sched = schedule(a.seed, soak, n)
    if a.only:
        sched = [f for f in sched if f["id"] in a.only]
        missing = sorted(set(a.only) - {f["id"] for f in sched})
        if missing:
            sys.exit(f"--only: no fault {', '.join(map(str, missing))} in this schedule (it has 1–{len(KINDS)})")
    json.dump(sched, sys.stdout, indent=1)
    print()
    return 0


def cmd_get(a):
    with open(a.schedule) as f:
        sched = json.load(f)
    f = next(x for x in sched if x["id"] == a.id)
    print(f"kind={f['kind']}")
    print(f"rest={f['rest']}")
    for k, v in f["params"].items():
        print(f"p_{k}={v}")
    print("describe=" + sh_quote(describe_params(f)))
    return 0


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def describe_params(f):
    return ", ".join(f"{k} {v}" for k, v in f["params"].items())


# --- the kill's phase against the lease renewal ---------------------------------


def boottime():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def cmd_phase(a):
    import http.client

    margin = min(a.ttl / 10, 0.2)
    conn = None

    def lease_left():
        nonlocal conn
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=0.5)
            conn.request("GET", "/metrics")
            body = conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            conn = None
            return None
        m = re.search(rb"^nonstop_fleet_lease_remaining_seconds (\S+)", body, re.M)
        return float(m.group(1)) if m else None

    # The deadline D (boottime) is fixed between renewals; each publication
    # of the view (at the end of a tick) shows D - its time, and falls
    # between our last request and this answer: a bracket on D.
    lo, hi = -math.inf, math.inf
    renewal = None  # the send time of the last renewal seen (boottime)
    prev = None  # (request time, value)
    give_up = boottime() + a.wait
    strike = None
    while boottime() < give_up:
        t_req = boottime()
        left = lease_left()
        t_resp = boottime()
        if left is not None and left > 0 and prev is not None and left != prev[1]:
            blo, bhi = prev[0] + left, t_resp + left
            if blo > hi + 0.05:  # the deadline moved on: a renewal
                lo, hi = blo, bhi
                renewal = (lo + hi) / 2 - a.ttl + margin
                strike = renewal + a.phase
                now = boottime()
                if now <= strike:
                    time.sleep(strike - now)
                    break
                if now - strike < 0.03:  # the renewal was seen late by a few ms
                    strike = now
                    break
                strike = None  # too late for this one: the next renewal
            else:
                lo, hi = max(lo, blo), min(hi, bhi)
        prev = (t_req, left) if left is not None else prev
        time.sleep(0.008)
    t0 = time.time()
    t_act = boottime()
    if a.signal:
        os.kill(a.pid, getattr(signal, "SIG" + a.signal))
    else:
        subprocess.run(a.command, check=True)
    if strike is None or renewal is None:
        print("t0=%.6f" % t0)
        print("phase_ms=-1")
        print("left_ms=-1")
        print("no renewal seen on /metrics within %.0f s" % a.wait, file=sys.stderr)
        return 0
    print("t0=%.6f" % t0)
    print("phase_ms=%.0f" % ((t_act - renewal) * 1000))
    print("left_ms=%.0f" % (((lo + hi) / 2 - t_act) * 1000))
    return 0


# --- judging ------------------------------------------------------------------------


def load_judge():
    spec = importlib.util.spec_from_file_location("fleet_judge", os.path.join(ROOT, "tests/tools/fleet/judge.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cmd_check(a):
    """judge.py check, with its figures recorded."""
    J = load_judge()
    start = J.to_mono(a.t_from)
    end = min(J.to_mono(a.t_to), time.monotonic()) if a.t_to else time.monotonic()
    recs = [r for r in J.load(a.file) if start - a.lead <= r[0] <= end]
    fig, broken = J.judge(recs, a.expect, a.max_gap, a.old, a.new, a.on_air_gap, end, start, a.seamless)
    line = J.describe(fig, a.expect)
    if "first_new" in fig:
        line += (f" [fault → last old {(fig['last_old'] - start) * 1000:.0f} ms, "
                 f"→ first new {(fig['first_new'] - start) * 1000:.0f} ms]")
    print(f"{a.name}: {line}")
    rec = {"name": a.name, "expect": a.expect, "max_gap": a.max_gap, "line": line, "broken": broken}
    for k in ("count", "span", "gap", "overlap", "max_gap_after", "first_au", "old", "new", "sources"):
        if k in fig:
            rec[k] = fig[k]
    if "max_gap" in fig:
        rec["gap_same"] = fig["max_gap"]
    if "cc" in fig:
        rec["cc"] = len(fig["cc"])
    if "first_new" in fig:
        rec["to_first_new"] = fig["first_new"] - start
        rec["to_last_old"] = fig["last_old"] - start
    with open(a.record, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if broken:
        print(f"FAIL: {a.name}: " + "; ".join(broken))
        return 1
    return 0


def read_lines(path):
    try:
        with open(path) as f:
            return [x.rstrip("\n") for x in f if x.strip()]
    except FileNotFoundError:
        return []


def cmd_end(a):
    with open(a.schedule) as f:
        entry = next(x for x in json.load(f) if x["id"] == a.id)
    info = {}
    for line in read_lines(os.path.join(a.dir, "info")):
        k, _, v = line.partition("=")
        info[k] = v
    verdicts = [json.loads(x) for x in read_lines(os.path.join(a.dir, "verdicts.jsonl"))]
    fails = read_lines(os.path.join(a.dir, "fails.txt"))
    for v in verdicts:
        for b in v["broken"]:
            fails.append(f"{v['name']}: {b}")
    fails = list(dict.fromkeys(fails))  # a verdict's reasons are noted twice
    if a.rc != 0 and not fails:
        fails.append(f"the fault's steps stopped with status {a.rc} (see run.log)")
    rec = dict(entry, info=info, verdicts=verdicts, fails=fails, ok=not fails,
               started=float(info.get("started", 0) or 0), ended=time.time(), dir="faults/" + os.path.basename(a.dir))
    with open(a.log, "a") as f:
        f.write(json.dumps(rec) + "\n")
    figs = "; ".join(v["line"] for v in verdicts)
    print(f"   fault {a.id} {entry['kind']}: {'pass' if not fails else 'FAIL'}" + (f" — {figs}" if figs else ""))
    for x in fails:
        print(f"   FAIL: {x}")
    return 0


# --- the report ------------------------------------------------------------------


def pct(xs, p):
    """Nearest-rank percentile."""
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def fmt_s(x):
    return "—" if x is None else f"{x:.2f}"


def measure(rec):
    """(figure, what) of one fault for its kind's row: the takeover's gap
    (old leader's last datagram → new one's first) for a switch, else the
    longest silence at the receiver."""
    vs = rec["verdicts"]
    switched = [v["gap"] for v in vs if "gap" in v]
    if switched:
        return max(switched)
    same = [v["gap_same"] for v in vs if "gap_same" in v]
    return max(same) if same else None


def cmd_report(a):
    run = json.load(open(os.path.join(a.out, "run.json")))
    recs = [json.loads(x) for x in read_lines(os.path.join(a.out, "faults.jsonl"))]
    extra = read_lines(os.path.join(a.out, "run-fails.txt"))  # outside any fault
    failed = [r for r in recs if not r["ok"]]
    now = time.time()
    t_first = run.get("faults_from") or run["started"]
    lines = []
    w = lines.append
    mode = f"soak {run['length_text']}" if run["mode"] == "soak" else "quick"
    w(f"# Fleet chaos: {mode}, seed {run['seed']}")
    w("")
    w(f"{'Final' if a.final else 'Interim'} report, written {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))}.")
    w("")
    w(f"- command: `{run['command']}`")
    w(f"- replay: `{run['replay']}` (a failed fault alone: add `--only N`)")
    w(f"- started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(run['started']))}; faults ran for "
      f"{(now - t_first) / 60:.1f} min" + (f" (ended {time.strftime('%H:%M:%S', time.localtime(run['ended']))})"
                                            if run.get("ended") else ""))
    w(f"- machine: {run['machine']}; build {run.get('build', '?')}")
    w(f"- world: 3 etcd members (`{run['etcd_flags']}`), box-a and box-b (nonstopd, channel `news` "
      f"active-passive, TTL {TTL:.0f} s, keyframe {KEYFRAME:.0f} s), a sender, a receiver; in network namespaces "
      f"(tests/tools/fleet/netns.bash)")
    w(f"- bounds (tests/fleet.sh): leader death → new leader's first datagram ≤ {TAKEOVER} s, on a keyframe; "
      f"drain and SIGTERM ≤ {HANDOVER} s; etcd faults and standby faults: one source, no gap over "
      f"{ON_AIR_GAP} s, no continuity break; after a switch no gap over {SWITCHED_GAP} s; overlap 0 always")
    rebuilt = int(run.get("rebuilt", 0))
    w(f"- **{len(recs)} faults, {len(recs) - len(failed)} passed, {len(failed)} failed**"
      + (f"; {len(extra)} problems outside a fault" if extra else "")
      + (f"; the world was rebuilt {rebuilt} times after a failure" if rebuilt else ""))
    if run.get("stopped"):
        w(f"- stopped early: {run['stopped']}")
    w("")
    w("## By kind")
    w("")
    w("Gap: for a switch, from the old leader's last datagram to the new one's first (the bound's measure); "
      "otherwise the longest silence at the receiver through the fault. Seconds.")
    w("")
    w("| kind | faults | failed | judged on | gap p50 | gap p99 | gap max | fault → first new, max | overlaps |")
    w("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    tot_overlap = 0
    for kind in KINDS:
        rs = [r for r in recs if r["kind"] == kind]
        if not rs:
            continue
        gaps = [g for g in (measure(r) for r in rs) if g is not None]
        firsts = [v["to_first_new"] for r in rs for v in r["verdicts"] if "to_first_new" in v]
        ov = sum(v.get("overlap", 0) for r in rs for v in r["verdicts"])
        tot_overlap += ov
        judged = {"leader-kill": f"switch ≤ {TAKEOVER} s", "leader-stop": f"switch ≤ {TAKEOVER} s",
                  "leader-cut-off": f"switch ≤ {TAKEOVER} s", "drain": f"switch ≤ {HANDOVER} s, then undrain: same",
                  "rolling-restart": f"leader: switch ≤ {HANDOVER} s; standby: same",
                  }.get(kind, f"same, gap ≤ {ON_AIR_GAP} s")
        w(f"| {kind} | {len(rs)} | {sum(1 for r in rs if not r['ok'])} | {judged} | {fmt_s(pct(gaps, 50))} | "
          f"{fmt_s(pct(gaps, 99))} | {fmt_s(max(gaps) if gaps else None)} | "
          f"{fmt_s(max(firsts) if firsts else None)} | {ov} |")
    w("")
    w(f"Overlapping datagrams (two boxes on air at once), all faults: **{tot_overlap}**.")
    deaths = [r for r in recs if r["kind"] in ("leader-kill", "leader-stop", "leader-cut-off") and r["verdicts"]
              and "gap" in r["verdicts"][0] and r["info"].get("phase_ms", "-1") not in ("-1", "")]
    if deaths:
        w("")
        w(f"Leader deaths by their phase: the time from the lease renewal's send to the fault (renewals every "
          f"{PERIOD:.1f} s; the lease then holds for TTL from the send, so a later fault leaves less of it):")
        w("")
        w("| phase | faults | gap p50 | gap max |")
        w("| --- | ---: | ---: | ---: |")
        third = PERIOD / 3
        for lo in (0, third, 2 * third):
            hi = lo + third if lo < 2 * third else 99
            g = [r["verdicts"][0]["gap"] for r in deaths if lo <= int(r["info"]["phase_ms"]) / 1000 < hi]
            if g:
                label = f"{lo * 1000:.0f}–{hi * 1000:.0f} ms" if hi < 99 else f"≥ {lo * 1000:.0f} ms"
                w(f"| {label} | {len(g)} | {fmt_s(pct(g, 50))} | {fmt_s(max(g))} |")
    w("")
    w("## Failures")
    w("")
    if not failed and not extra:
        w("None.")
    for r in failed:
        only = run["replay"] + f" --only {r['id']}"
        when = time.strftime("%H:%M:%S", time.localtime(r["started"])) if r["started"] else "?"
        w(f"- **fault {r['id']}** ({r['kind']}: {describe_params(r)}), at {when}, seed {run['seed']}: "
          + "; ".join(r["fails"]))
        w(f"  - replay: `{only}`; evidence: `{r['dir']}/` (the capture, both boxes' log lines since the fault)")
    for x in extra:
        w(f"- {x}")
    w("")
    w("## Every fault")
    w("")
    w("| # | at | kind | parameters | leader before | at the fault | verdict |")
    w("| ---: | --- | --- | --- | --- | --- | --- |")
    for r in recs:
        i = r["info"]
        at = []
        if i.get("phase_ms") not in (None, "", "-1"):
            at.append(f"{i['phase_ms']} ms after a renewal, {i['left_ms']} ms left")
        if i.get("member"):
            at.append(f"etcd {i['member']}")
        v = "pass" if r["ok"] else "**FAIL**: " + "; ".join(r["fails"])
        figs = " / ".join(x["line"] for x in r["verdicts"])
        when = time.strftime("%H:%M:%S", time.localtime(r["started"])) if r["started"] else "?"
        w(f"| {r['id']} | {when} | {r['kind']} | {describe_params(r)} | {i.get('leader', '?')} | "
          f"{', '.join(at) or '—'} | {v}{' — ' + figs if figs else ''} |")
    text = "\n".join(lines) + "\n"
    tmp = os.path.join(a.out, "report.md.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(a.out, "report.md"))
    return 1 if (failed or extra) else 0


def cmd_run(a):
    """run.json: what the report says about the run (fleet.sh writes keys)."""
    path = os.path.join(a.out, "run.json")
    run = json.load(open(path)) if os.path.exists(path) else {}
    for kv in a.set:
        k, _, v = kv.partition("=")
        try:
            run[k] = json.loads(v)
        except ValueError:
            run[k] = v
    with open(path + ".tmp", "w") as f:
        json.dump(run, f, indent=1)
    os.replace(path + ".tmp", path)
    return 0


def parse_ids(s):
    try:
        ids = sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"fault ids \"{s}\": expected e.g. 3,7")
    if not ids or min(ids) < 1:
        raise argparse.ArgumentTypeError("--only: fault ids start at 1")
    return ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("schedule")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--mode", choices=["quick", "soak"], required=True)
    s.add_argument("--length", type=float, default=0)
    s.add_argument("--only", type=parse_ids)
    g = sub.add_parser("get")
    g.add_argument("schedule")
    g.add_argument("id", type=int)
    p = sub.add_parser("phase")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ttl", type=float, default=TTL)
    p.add_argument("--phase", type=float, required=True)
    p.add_argument("--wait", type=float, default=5.0)
    p.add_argument("--signal")
    p.add_argument("--pid", type=int)
    p.add_argument("command", nargs="*")
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--record", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--from", dest="t_from", type=float, required=True)
    c.add_argument("--to", dest="t_to", type=float)
    c.add_argument("--expect", choices=["switch", "same"], required=True)
    c.add_argument("--max-gap", type=float, default=0.5)
    c.add_argument("--old")
    c.add_argument("--new")
    c.add_argument("--lead", type=float, default=1.0)
    c.add_argument("--on-air-gap", type=float, default=0.5)
    c.add_argument("--seamless", action="store_true")
    e = sub.add_parser("end")
    e.add_argument("--schedule", required=True)
    e.add_argument("--dir", required=True)
    e.add_argument("--id", type=int, required=True)
    e.add_argument("--rc", type=int, required=True)
    e.add_argument("--log", required=True)
    r = sub.add_parser("report")
    r.add_argument("--out", required=True)
    r.add_argument("--final", action="store_true")
    u = sub.add_parser("run")
    u.add_argument("--out", required=True)
    u.add_argument("set", nargs="+")
    a = ap.parse_args()
    if a.cmd == "phase" and not a.signal and not a.command:
        ap.error("phase: --signal SIG --pid PID or -- CMD")
    return {"schedule": cmd_schedule, "get": cmd_get, "phase": cmd_phase, "check": cmd_check, "end": cmd_end,
            "report": cmd_report, "run": cmd_run}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
