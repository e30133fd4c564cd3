#!/usr/bin/env python3
"""The fleet test's receiver and judge (tests/fleet.sh). Standard library only.

  judge.py record PORT FILE
      Receives UDP on 0.0.0.0:PORT until killed and appends every datagram to
      FILE: its arrival time on CLOCK_MONOTONIC (the kernel's receive
      timestamp, so a receiver that is scheduled late does not move it), its
      source IPv4 address and its bytes.

  judge.py check FILE --name NAME --from T0 [--to T1] --expect switch|same
                 [--max-gap S] [--on-air-gap S] [--old IP] [--new IP] [--lead S]
      Judges the datagrams that arrived between T0 - lead (default 1 s before
      the fault at T0, so that the old source is surely in the window) and T1
      (default now; epoch seconds, as bash's $EPOCHREALTIME, converted to the
      monotonic clock). The silence before T1 counts as a gap.
      switch: exactly one change of source; the gap from the old source's last
        datagram to the new one's first is at most --max-gap; no datagram from
        any other source after the new one's first (overlap 0); the new
        source's first video access unit is a keyframe (SPS or IDR before any
        non-IDR slice); then no gap over --on-air-gap (default 0.5 s) and no
        MPEG-TS continuity counter break (an output that restarted, or a
        datagram lost).
        With --seamless (a scheduled handover) also: the new source's first
        video frame is the old one's last plus one frame (PES PTS; the frame
        from the old source's own spacing): no frame lost, none twice.
      same: one source throughout, no gap over --max-gap, no continuity break.
      Prints one line of figures; with a broken rule also "FAIL: ..." and
      exits 1.

  judge.py steady FILE --ip IP [--for S]
      Exits 0 when the last S seconds (default 2) came from IP alone with no
      gap over 0.5 s, and the last datagram is fresh; else says what it saw.

  judge.py selftest TSFILE
      Checks the TS parsing on a recording (every video PES's keyframe verdict
      against ffprobe's) and the window rules on made-up arrivals.
"""

import argparse
import ipaddress
import os
import socket
import struct
import subprocess
import sys
import time

RECORD = struct.Struct("<dIH")  # arrival (s, CLOCK_MONOTONIC), source IPv4, length
SO_TIMESTAMPNS = 35  # Linux; not exported by Python's socket module
TS = 188
H264 = 0x1B


# --- recording ----------------------------------------------------------------


def record(port, path):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("0.0.0.0", port))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    while True:
        data, anc, _, addr = s.recvmsg(65535, 64)
        real, mono = time.time(), time.monotonic()
        kernel = real
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                kernel = sec + nsec / 1e9
        ip = int(ipaddress.IPv4Address(addr[0]))
        # One write per datagram: a reader never sees half a record but the last.
        os.write(fd, RECORD.pack(mono - (real - kernel), ip, len(data)) + data)


def load(path):
    """[(arrival, ip, payload)] as received."""
    out = []
    with open(path, "rb") as f:
        buf = f.read()
    i = 0
    while i + RECORD.size <= len(buf):
        t, ip, n = RECORD.unpack_from(buf, i)
        i += RECORD.size
        if i + n > len(buf):
            break
        out.append((t, str(ipaddress.IPv4Address(ip)), buf[i : i + n]))
        i += n
    # In the order they were received: two datagrams a microsecond apart may
    # carry timestamps in the other order (each converts its own), and
    # sorting them would reorder the stream.
    return out


def to_mono(epoch):
    return epoch - (time.time() - time.monotonic())


# --- MPEG-TS and H.264 --------------------------------------------------------


def packets(datagrams):
    """(pid, payload_unit_start, payload) of every TS packet, in order."""
    for d in datagrams:
        for i in range(0, len(d) - TS + 1, TS):
            p = d[i : i + TS]
            if p[0] != 0x47:
                continue
            pid = (p[1] & 0x1F) << 8 | p[2]
            afc = (p[3] >> 4) & 3
            off = 4
            if afc & 2:
                off += 1 + p[4]
            if not afc & 1 or off >= TS:
                continue
            yield pid, bool(p[1] & 0x40), p[off:]


def cc_breaks(recs):
    """The continuity counter breaks in datagrams `recs` (arrival, ip, bytes):
    [(arrival, ip, pid)] wherever a packet with payload does not carry its
    PID's previous counter + 1 (or the same, a duplicate). A lost datagram or
    an output that restarted (a new muxer counts from 0) shows here."""
    last, out = {}, []
    for t, ip, d in recs:
        for i in range(0, len(d) - TS + 1, TS):
            p = d[i : i + TS]
            if p[0] != 0x47 or not p[3] & 0x10:
                continue
            key, cc = (ip, (p[1] & 0x1F) << 8 | p[2]), p[3] & 0x0F
            if key in last and cc not in (last[key], (last[key] + 1) % 16):
                out.append((t, ip, key[1]))
            last[key] = cc
    return out


def section(payload):
    """The PSI section a packet that starts one carries (after its pointer field)."""
    return payload[1 + payload[0] :]


def video_pid(datagrams):
    """The PID of the H.264 stream, from the PAT and PMT (None if not found)."""
    pmts = set()
    for pid, start, pl in packets(datagrams):
        if not start:
            continue
        if pid == 0:
            s = section(pl)
            if s[0] != 0x00:
                continue
            end = 3 + ((s[1] & 0x0F) << 8 | s[2]) - 4  # before the CRC
            for i in range(8, end, 4):
                program = s[i] << 8 | s[i + 1]
                if program != 0:
                    pmts.add((s[i + 2] & 0x1F) << 8 | s[i + 3])
        elif pid in pmts:
            s = section(pl)
            if s[0] != 0x02:
                continue
            end = 3 + ((s[1] & 0x0F) << 8 | s[2]) - 4
            i = 12 + ((s[10] & 0x0F) << 8 | s[11])
            while i + 5 <= end:
                stype, es = s[i], (s[i + 1] & 0x1F) << 8 | s[i + 2]
                if stype == H264:
                    return es
                i += 5 + ((s[i + 3] & 0x0F) << 8 | s[i + 4])
    return None


def nal_types(es):
    """NAL unit types in an Annex B byte stream, in order."""
    i = es.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(es):
        yield es[i + 3] & 0x1F
        i = es.find(b"\x00\x00\x01", i + 3)


def first_access_unit(datagrams, pid):
    """How the first video PES in `datagrams` starts: (verdict, nal types seen
    up to the first slice, video packets before that PES). Verdict: "keyframe"
    (SPS or IDR before any non-IDR slice), "not a keyframe", "no slice" (in
    its first 4 KiB) or "no video"."""
    stray = 0
    pes = None
    for p, start, pl in packets(datagrams):
        if p != pid:
            continue
        if pes is None:
            if start:
                pes = bytearray(pl)
            else:
                stray += 1
        elif start:
            break
        else:
            pes += pl
        if pes is not None and len(pes) > 4096:  # the first NALs are enough
            break
    if pes is None or pes[:3] != b"\x00\x00\x01":
        return "no video", [], stray
    seen = []
    for t in nal_types(bytes(pes[9 + pes[8] :])):
        seen.append(t)
        if t in (5, 7):
            return "keyframe", seen, stray
        if t == 1:
            return "not a keyframe", seen, stray
    return "no slice", seen, stray


def video_pts(datagrams, pid):
    """The PTS (90 kHz) of every video PES that starts in `datagrams`, in order."""
    out = []
    for p, start, pl in packets(datagrams):
        if p != pid or not start or pl[:3] != b"\x00\x00\x01" or len(pl) < 14 or not pl[7] & 0x80:
            continue
        b = pl[9:14]
        out.append((b[0] >> 1 & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1)
    return out


def seam(old, new):
    """Across a switch from datagrams `old` to `new`: (frame, step, verdict),
    the old source's frame spacing and the step from its last PTS to the new
    source's first (90 kHz ticks); verdict None when the step is one frame."""
    pid = video_pid(old + new)
    if pid is None:
        return None, None, "no PAT/PMT with H.264"
    a, b = video_pts(old, pid), video_pts(new, pid)
    if len(a) < 3 or not b:
        return None, None, f"too few video frames to judge ({len(a)} old, {len(b)} new)"
    steps = sorted((y - x) % (1 << 33) for x, y in zip(a, a[1:]))
    frame = steps[len(steps) // 2]
    step = (b[0] - max(a)) % (1 << 33)
    if abs(step - frame) <= 2:
        return frame, step, None
    if step > frame:
        what = f"{(step - frame) / frame:.1f} frames lost"
    else:
        what = f"{(frame - step) / frame:.1f} frames sent twice"
    return frame, step, f"not seamless: the new source's first frame is {step / 90:.1f} ms after the old one's last, not one frame ({frame / 90:.1f} ms): {what}"


def keyframe_verdict(datagrams):
    pid = video_pid(datagrams)
    if pid is None:
        return "no PAT/PMT with H.264", [], 0
    return first_access_unit(datagrams, pid)


# --- windows --------------------------------------------------------------------


def judge(recs, expect, max_gap, old=None, new=None, on_air_gap=0.5, end=None, t0=None, seamless=False):
    """Figures and broken rules for the datagrams `recs` (arrival, ip, bytes)
    of one fault window, which ends at `end` (default: the last arrival; the
    silence from the last datagram to it counts as a gap). After a switch the
    new source may pause no longer than `on_air_gap`; `seamless`: it must go
    on from the old one's last frame (see `seam`). Times in messages count
    from `t0`, the fault (default: the first arrival)."""
    t0 = recs[0][0] if t0 is None and recs else t0
    fig = {"count": len(recs)}
    broken = []
    if not recs:
        return fig, ["no datagram at all in the window"]
    runs = []  # [source, first index]
    for i, (_, ip, _) in enumerate(recs):
        if not runs or runs[-1][0] != ip:
            runs.append([ip, i])
    fig["sources"] = [r[0] for r in runs]
    end = recs[-1][0] if end is None else max(end, recs[-1][0])
    fig["span"] = end - recs[0][0]
    # (length, start) of every silence, the one after the last datagram too
    gaps = [(b[0] - a[0], a[0]) for a, b in zip(recs, recs[1:])] + [(end - recs[-1][0], recs[-1][0])]
    if expect == "same":
        fig["max_gap"], fig["max_gap_at"] = max(gaps)
        fig["max_gap_at"] -= t0
        fig["cc"] = cc_breaks(recs)
        if fig["cc"]:
            broken.append(cc_text(fig["cc"], t0) + " after the fault")
        if len(runs) > 1:
            broken.append("the source changed: " + " → ".join(fig["sources"]))
        elif old and runs[0][0] != old:
            broken.append(f"on air from {runs[0][0]}, want {old}")
        if fig["max_gap"] > max_gap:
            broken.append(f"gap {fig['max_gap'] * 1000:.0f} ms > {max_gap * 1000:.0f} ms, {fig['max_gap_at']:.2f} s after the fault")
        return fig, broken
    if len(runs) == 1:
        return fig, [f"no switch: {runs[0][0]} throughout"]
    fig["old"], fig["new"] = runs[0][0], runs[1][0]
    first = runs[1][1]
    fig["gap"] = recs[first][0] - recs[first - 1][0]
    fig["first_new"] = recs[first][0]
    fig["last_old"] = recs[first - 1][0]
    after = recs[first:]
    fig["overlap"] = sum(1 for r in after if r[1] != fig["new"])
    fig["max_gap_after"], fig["max_gap_after_at"] = max(gaps[first:])
    fig["max_gap_after_at"] -= t0
    fig["after"] = end - after[0][0]
    verdict, nals, stray = keyframe_verdict([r[2] for r in after if r[1] == fig["new"]])
    fig["cc"] = cc_breaks([r for r in after if r[1] == fig["new"]])
    if fig["cc"]:
        broken.append(cc_text(fig["cc"], t0) + " after the fault")
    fig["first_au"], fig["nals"], fig["stray"] = verdict, nals, stray
    if old and fig["old"] != old:
        broken.append(f"on air before: {fig['old']}, want {old}")
    if new and fig["new"] != new:
        broken.append(f"on air after: {fig['new']}, want {new}")
    if fig["gap"] > max_gap:
        broken.append(f"gap {fig['gap'] * 1000:.0f} ms > {max_gap * 1000:.0f} ms")
    if fig["overlap"]:
        others = sorted({r[1] for r in after if r[1] != fig["new"]})
        broken.append(f"overlap: {fig['overlap']} datagrams from {', '.join(others)} after {fig['new']}'s first")
    if verdict != "keyframe":
        broken.append(f"the new source's first video access unit: {verdict} (NAL types {nals})")
    if seamless:
        fig["frame"], fig["step"], why = seam([r[2] for r in recs[:first]], [r[2] for r in after if r[1] == fig["new"]])
        if why:
            broken.append(why)
    if fig["max_gap_after"] > on_air_gap:
        broken.append(f"after the switch a gap of {fig['max_gap_after'] * 1000:.0f} ms > {on_air_gap * 1000:.0f} ms, {fig['max_gap_after_at']:.2f} s after the fault")
    return fig, broken


def cc_text(breaks, since):
    at = ", ".join(f"{t - since:.2f} s" for t in sorted({b[0] for b in breaks})[:5])
    return f"{len(breaks)} continuity counter breaks (a datagram lost or the output restarted) at {at}"


def describe(fig, expect):
    if "sources" not in fig:
        return "nothing received"
    if expect == "same" or len(fig["sources"]) == 1:
        text = f"{' → '.join(fig['sources'])} on air, {fig['count']} datagrams over {fig['span']:.1f} s"
        if "max_gap" in fig:
            text += f", max gap {fig['max_gap'] * 1000:.0f} ms (at {fig['max_gap_at']:.1f} s), {len(fig['cc'])} continuity breaks"
        return text
    text = (
        f"{fig['old']} → {fig['new']}: gap {fig['gap'] * 1000:.0f} ms, overlap {fig['overlap']}, "
        f"first AU {fig['first_au']} (NAL {','.join(map(str, fig['nals']))})"
    )
    if fig["stray"]:
        text += f" after {fig['stray']} stray video packets"
    text += f"; then {fig['after']:.1f} s: max gap {fig['max_gap_after'] * 1000:.0f} ms (at {fig['max_gap_after_at']:.1f} s), {len(fig['cc'])} continuity breaks"
    if fig.get("step") is not None:
        text += f"; seam: {fig['step'] / 90:.1f} ms from the last old frame to the first new (a frame: {fig['frame'] / 90:.1f} ms)"
    if len(fig["sources"]) > 2:
        text += f"; sources {' → '.join(fig['sources'])}"
    return text


def check(args):
    start = to_mono(args.t_from)
    end = min(to_mono(args.t_to), time.monotonic()) if args.t_to else time.monotonic()
    recs = [r for r in load(args.file) if start - args.lead <= r[0] <= end]
    fig, broken = judge(recs, args.expect, args.max_gap, args.old, args.new, args.on_air_gap, end, start, args.seamless)
    line = describe(fig, args.expect)
    if "first_new" in fig:
        line += f" [fault → last old {(fig['last_old'] - start) * 1000:.0f} ms, → first new {(fig['first_new'] - start) * 1000:.0f} ms]"
    print(f"{args.name}: {line}")
    if broken:
        print(f"FAIL: {args.name}: " + "; ".join(broken))
        return 1
    return 0


def steady(args):
    now = time.monotonic()
    recs = [r for r in load(args.file) if r[0] >= now - args.seconds]
    ips = sorted({r[1] for r in recs})
    times = [now - args.seconds] + [r[0] for r in recs] + [now]
    gap = max(b - a for a, b in zip(times, times[1:]))
    ok = ips == [args.ip] and gap <= 0.5
    if not ok and args.verbose:
        print(f"last {args.seconds} s: {len(recs)} datagrams from {ips or 'nobody'}, max gap {gap * 1000:.0f} ms")
    return 0 if ok else 1


# --- self-check ---------------------------------------------------------------


def selftest(path):
    data = open(path, "rb").read()
    assert len(data) % TS == 0 and data[0] == 0x47, "not a TS file"
    pid = video_pid([data])
    assert pid is not None, "no H.264 PID in the PMT"
    # ffprobe's keyframe flag of every video packet, by the byte offset of the
    # TS packet its PES starts in.
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=pos,flags",
         "-of", "csv=p=0", path],
        check=True, capture_output=True, text=True).stdout
    truth = {}
    for line in out.split():
        pos, flags = line.split(",")[:2]
        truth[int(pos)] = "K" in flags
    assert sum(truth.values()) >= 2 and not all(truth.values()), f"want keyframes and others: {truth}"
    # Our verdict on the stream cut just before each of those packets (as a
    # switch would: the new source's first datagram starts there).
    starts = sorted(truth)
    for pos in starts:
        verdict, nals, _ = first_access_unit([data[pos:]], pid)
        assert verdict == ("keyframe" if truth[pos] else "not a keyframe"), (pos, truth[pos], verdict, nals)
    # A cut just after a keyframe's first packet starts mid-PES: those video
    # packets are skipped and the next PES (not a keyframe) is judged.
    k = next(p for p in starts if truth[p])
    verdict, _, stray = first_access_unit([data[k + TS :]], pid)
    assert stray >= 1, stray
    # The window rules on made-up arrivals: 7-packet datagrams every 20 ms.
    grams = [data[i : i + 7 * TS] for i in range(0, len(data), 7 * TS)]
    a, b = "10.77.0.21", "10.77.0.22"
    old = [(i * 0.02, a, g) for i, g in enumerate(grams[:50])]
    new = [(2.0 + i * 0.02, b, g) for i, g in enumerate(grams)]
    fig, broken = judge(old + new, "switch", 1.5)
    assert not broken and abs(fig["gap"] - 1.02) < 1e-9 and fig["overlap"] == 0, (fig, broken)
    fig, broken = judge(old + new, "switch", 0.5)
    assert broken == ["gap 1020 ms > 500 ms"], broken
    assert abs(fig["max_gap_after"] - 0.02) < 1e-9, fig
    late_old = (2.1, a, grams[0])
    fig, broken = judge(sorted(old + new + [late_old]), "switch", 1.5)
    assert fig["overlap"] == 1 and len(broken) == 1 and broken[0].startswith("overlap"), broken
    p_start = next(p for p in starts if not truth[p]) // TS
    mid = [(2.0 + i * 0.02, b, data[(p_start + 7 * i) * TS : (p_start + 7 * i + 7) * TS]) for i in range(40)]
    fig, broken = judge(old + mid, "switch", 1.5)
    assert fig["first_au"] == "not a keyframe" and len(broken) == 1, (fig, broken)
    holed = new[:10] + [(t + 0.6, ip, g) for t, ip, g in new[10:]]
    fig, broken = judge(old + holed, "switch", 1.5)
    assert broken == ["after the switch a gap of 620 ms > 500 ms, 2.18 s after the fault"], broken
    # Seamless: the new source goes on from the old one's next PES, or a
    # frame is missing, or one comes twice.
    k2 = [p for p in starts if truth[p]][1]
    cut = k2 // TS
    seq = [data[i * TS : (i + 1) * TS] for i in range(len(data) // TS)]
    before = [(i * 0.02, a, g) for i, g in enumerate(seq[:cut])]
    after = [(5.0 + i * 0.02, b, g) for i, g in enumerate(seq[cut:])]
    fig, broken = judge(before + after, "switch", 5, seamless=True)
    assert not broken and fig["step"] == fig["frame"], (fig, broken)
    prev = max(p for p in starts if p < k2) // TS
    fig, broken = judge(before[:prev] + after, "switch", 5, seamless=True)
    assert len(broken) == 1 and "1.0 frames lost" in broken[0], broken
    fig, broken = judge(before + [(5.0, b, g) for g in seq[prev:cut]] + after, "switch", 5, seamless=True)
    assert len(broken) == 2 and "sent twice" in broken[1], broken  # and not on a keyframe
    fig, broken = judge(old, "same", 0.5, old=a)
    assert not broken and abs(fig["max_gap"] - 0.02) < 1e-9, (fig, broken)
    fig, broken = judge(old, "same", 0.5, old=a, end=old[-1][0] + 0.7)
    assert broken == ["gap 700 ms > 500 ms, 0.98 s after the fault"], broken  # it went silent
    fig, broken = judge(old + new, "same", 0.5)
    assert len(broken) == 2, broken  # changed, and the gap
    restarted = old + [(2.0 + i * 0.02, a, g) for i, g in enumerate(grams[:20])]
    fig, broken = judge(restarted, "same", 1.5)
    assert len(broken) == 1 and "continuity" in broken[0], broken  # a new muxer counts from 0
    fig, broken = judge(old[:20] + old[21:], "same", 0.5)
    assert len(broken) == 1 and "continuity" in broken[0], broken  # one datagram lost
    print(f"judge.py selftest: {len(starts)} video PES ({sum(truth.values())} keyframes) judged as ffprobe does; window rules hold")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("port", type=int)
    r.add_argument("file")
    c = sub.add_parser("check")
    c.add_argument("file")
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
    s = sub.add_parser("steady")
    s.add_argument("file")
    s.add_argument("--ip", required=True)
    s.add_argument("--for", dest="seconds", type=float, default=2.0)
    s.add_argument("-v", "--verbose", action="store_true")
    t = sub.add_parser("selftest")
    t.add_argument("tsfile")
    args = ap.parse_args()
    if args.cmd == "record":
        record(args.port, args.file)
    elif args.cmd == "check":
        return check(args)
    elif args.cmd == "steady":
        return steady(args)
    return selftest(args.tsfile)


if __name__ == "__main__":
    sys.exit(main())
