"""Fault kinds and the seeded schedule.

A schedule is a list of faults, each `{"id", "at", "kind", "channel",
"targets", "dur", "params"}`, drawn from `random.Random(seed)` alone, so the
same seed (and mode and length) gives the same schedule, whatever happens
while it runs.
"""

import random

# What each fault can hit: (channel, target). Inputs are "in:<id>",
# outputs "out:<id>".
SENDERS = [("alpha", "in:primary"), ("alpha", "in:backup"), ("bravo", "in:primary"),
           ("charlie", "in:primary"), ("charlie", "in:backup")]
UDP_SENDERS = [("alpha", "in:backup"), ("bravo", "in:primary"), ("charlie", "in:primary")]
RECEIVERS = [("alpha", "out:srt"), ("charlie", "out:srt")]
FORMATS = [((640, 360), 25, 2), ((1280, 720), 30, 1), ((320, 240), 50, 2), ((720, 576), 25, 1),
           ((480, 270), 24, 2)]

KINDS = ["sender-kill", "sender-pause", "garbage", "format-change", "loss", "delay", "congestion",
         "receiver-kill", "receiver-stall", "disk-full", "encoder-fail", "flapping", "multi",
         "daemon-kill"]

CHANNELS = ["alpha", "bravo", "charlie"]
# After a fault ends its channel rests this long (the longest hold-off,
# max_return_after, + the longest backoff + a keyframe and margin) before
# the next fault on it.
REST = 12.0
# Around a SIGKILL of nonstopd nothing else happens.
DAEMON_SETTLE = 20.0


def _one(rng, kind, soak):
    """(channel, targets, duration, params) of one fault of KIND."""
    long = 3.0 if soak else 1.0
    if kind in ("sender-kill", "sender-pause"):
        ch, t = rng.choice(SENDERS)
        return ch, [t], round(rng.uniform(3, 6 * long), 1), {}
    if kind == "garbage":
        ch, t = rng.choice(UDP_SENDERS)
        return ch, [t], round(rng.uniform(4, 8 * long), 1), {}
    if kind == "format-change":
        ch, t = rng.choice(UDP_SENDERS)
        return ch, [t], 0.0, {"format": rng.randrange(len(FORMATS))}
    if kind == "loss":
        return "bravo", ["in:primary"], round(rng.uniform(5, 10 * long), 1), \
            {"loss": rng.choice([5, 10, 20, 40, 60])}
    if kind == "delay":
        return "bravo", ["in:primary"], round(rng.uniform(5, 10 * long), 1), \
            {"delay": rng.choice([100, 200, 400, 800]), "jitter": rng.choice([0, 10, 50])}
    if kind == "congestion":
        # The link's rate drops below the stream's (about 600 kbit/s).
        return "bravo", ["in:primary"], round(rng.uniform(5, 10 * long), 1), \
            {"rate_kbit": rng.choice([150, 300, 450])}
    if kind == "receiver-kill":
        ch, t = rng.choice(RECEIVERS)
        return ch, [t], round(rng.uniform(3, 8 * long), 1), {}
    if kind == "receiver-stall":
        ch, t = rng.choice(RECEIVERS)
        # Longer than the outputs' 5 s no-data bound, or it is not a fault.
        return ch, [t], round(rng.uniform(7, 12 * long), 1), {}
    if kind == "disk-full":
        return "alpha", ["out:rec"], round(rng.uniform(5, 10 * long), 1), {}
    if kind == "encoder-fail":
        return "alpha", ["enc:video"], 3.0, {}
    if kind == "flapping":
        ch = rng.choice(["bravo", "charlie"])
        return ch, ["in:primary"], round(rng.uniform(8, 12 * long), 1), \
            {"period": round(rng.uniform(0.8, 1.6), 2)}
    if kind == "daemon-kill":
        return "*", ["nonstopd"], 0.0, {}
    raise ValueError(kind)


def _multi(rng, soak):
    """Several faults at once: both inputs of one channel (the slate goes
    on air) and one fault on another channel."""
    ch = rng.choice(["alpha", "charlie"])
    other = rng.choice([c for c in CHANNELS if c != ch])
    dur = round(rng.uniform(4, 8 * (3.0 if soak else 1.0)), 1)
    parts = [{"kind": rng.choice(["sender-kill", "sender-pause"]), "channel": ch,
              "targets": ["in:primary"], "dur": dur, "params": {}},
             {"kind": rng.choice(["sender-kill", "sender-pause"]), "channel": ch,
              "targets": ["in:backup"], "dur": dur, "params": {}}]
    extra = [k for k in ("receiver-kill", "loss", "sender-kill")
             if k != "receiver-kill" or other in ("alpha", "charlie")]
    if other != "bravo":
        extra.remove("loss")
    k = rng.choice(extra)
    if k == "receiver-kill":
        parts.append({"kind": k, "channel": other, "targets": ["out:srt"], "dur": dur, "params": {}})
    elif k == "loss":
        parts.append({"kind": k, "channel": "bravo", "targets": ["in:primary"], "dur": dur,
                      "params": {"loss": 30}})
    else:
        parts.append({"kind": k, "channel": other, "targets": ["in:primary"], "dur": dur,
                      "params": {}})
    return [ch, other], dur, parts


def only(sched, ids, warmup=15.0):
    """The faults IDS of a schedule, as drawn from its seed (channel, targets,
    duration, parameters), moved earlier together so the first starts after
    the warm-up: a past failure replayed as a short fixed case."""
    keep = [f for f in sched if f["id"] in ids]
    missing = sorted(set(ids) - {f["id"] for f in keep})
    if missing:
        raise ValueError(f"--only: no fault {', '.join(map(str, missing))} in this schedule "
                         f"(it has 1–{len(sched)})")
    shift = keep[0]["at"] - warmup
    return [dict(f, at=round(f["at"] - shift, 1)) for f in keep]


def schedule(seed, length, soak, warmup=15.0):
    """The faults of a run of LENGTH seconds (quick: one of each kind)."""
    rng = random.Random(seed)
    free = {c: warmup for c in CHANNELS}
    out = []
    if soak:
        kinds = []
    else:
        kinds = KINDS[:]
        rng.shuffle(kinds)
    t = warmup
    last_kill = -1e9
    while True:
        if soak:
            kind = rng.choices(KINDS, weights=[4, 3, 2, 2, 2, 2, 1, 2, 2, 1, 2, 2, 1, 1])[0]
            if kind == "daemon-kill" and t - last_kill < 1200:
                continue
            t += rng.expovariate(1 / 8.0)
        elif not kinds:
            break
        else:
            kind = kinds.pop(0)
        f = {"id": len(out) + 1, "kind": kind, "params": {}}
        if kind == "multi":
            chans, dur, parts = _multi(rng, soak)
            f.update(channel="+".join(chans), targets=[], dur=dur, parts=parts)
        else:
            ch, targets, dur, params = _one(rng, kind, soak)
            chans = CHANNELS if ch == "*" else [ch]
            f.update(channel=ch, targets=targets, dur=dur, params=params)
        if kind == "daemon-kill":
            at = max([t] + list(free.values()))
            for c in CHANNELS:
                free[c] = at + DAEMON_SETTLE
            last_kill = at
        else:
            at = max([t] + [free[c] for c in chans])
            for c in chans:
                free[c] = at + f["dur"] + REST
        if soak and at + f["dur"] + REST > length:
            break
        f["at"] = round(at, 1)
        out.append(f)
        if not soak:
            t = at + 1.0
    out.sort(key=lambda f: f["at"])
    return out
