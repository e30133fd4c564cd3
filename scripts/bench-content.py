#!/usr/bin/python3
"""What carrying a channel's broadcast content costs (run by `scripts/bench
--only content`): the same 1080p50 channel with its input's closed
captions, SCTE-35 cues and four audio tracks carried (`captions =
"carry"`, `pass_scte35 = true`, four `[[channel.audio]]`) and without
them (`captions = "drop"`, no passing, one track), in alternating runs;
CPU of nonstopd from /proc per second of wall time, and the output's
frame rate (a UDP receiver counts video PES).

The input is made once: 30 s of 1920x1080 at 50 fps, a moving test
picture with CEA-608 captions on every frame (a new caption each 2 s) and
an SCTE-35 splice_insert every 10 s, H.264 (x264 ultrafast), and four
AAC streams (tones), in MPEG-TS; nonstopd plays it in a loop as a file
input (decoding its four streams either way).

Prints markdown; `--json FILE` also writes the raw figures.
usage: bench-content.py [run] --nonstopd BIN [--quick] [--reps N] [--secs S] [--json FILE]
"""

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

from benchlib import cpu_seconds, free_port, start_nonstopd, stop

FPS = 50
TRACKS = 4
LANGUAGES = ["eng", "spa", "fre", "ger"]


def make_input(path):
    """The captioned, cued 1080p50 input file, made in real time (30 s):
    mpegtsmux writes a section sent while the stream runs live, not one a
    pipeline running ahead of the clock sends it."""
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstMpegts", "1.0")
    from gi.repository import Gst, GstMpegts

    Gst.init(None)
    GstMpegts.initialize()
    frames = 30 * FPS
    p = Gst.parse_launch(
        "appsrc name=cc format=time is-live=true block=true max-bytes=64 "
        "caps=closedcaption/x-cea-608,format=raw,framerate=50/1 "
        "! ccconverter ! closedcaption/x-cea-708,format=cc_data ! queue ! comb.caption "
        f"videotestsrc is-live=true num-buffers={frames} pattern=ball ! video/x-raw,width=1920,height=1080,framerate=50/1 "
        "! cccombiner name=comb ! x264enc speed-preset=ultrafast bitrate=8000 key-int-max=100 "
        "! h264parse name=vparse ! mux. "
        + "".join(
            f"audiotestsrc is-live=true num-buffers={30 * 48000 // 1024} samplesperbuffer=1024 freq={440 + 110 * k} "
            "! audioconvert ! avenc_aac ! aacparse ! mux. "
            for k in range(TRACKS)
        )
        + 
        f"mpegtsmux name=mux scte-35-pid=500 ! filesink location={path}"
    )
    src, mux = p.get_by_name("cc"), p.get_by_name("mux")
    parity = lambda b: b | (0x80 if bin(b).count("1") % 2 == 0 else 0)  # noqa: E731
    cues = [(4 + 10 * k) * Gst.SECOND for k in range(3)]

    def cue(pad, info):
        # A cue as the stream passes 4, 14 and 24 s, its splice 1 s later.
        # In running time: x264enc's output segment starts 1000 h in.
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0).parse_segment()
        pts = seg.to_running_time(Gst.Format.TIME, info.get_buffer().pts)
        while cues and pts >= cues[0]:
            k = 3 - len(cues)
            sit = GstMpegts.scte_splice_out_new(100 + k, cues.pop(0) + Gst.SECOND, 3 * Gst.SECOND)
            GstMpegts.section_from_scte_sit(sit, 500).send_event(mux)
        return Gst.PadProbeReturn.OK

    p.get_by_name("vparse").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, cue)

    def feed():
        for n in range(frames):
            pairs = []
            if n % (2 * FPS) == 0:  # a pop-on caption every 2 s
                text = f"CAPTION {n // (2 * FPS):03d}"
                ctl = lambda a, b: [(parity(a), parity(b))] * 2  # noqa: E731
                chars = [parity(ord(c)) for c in text] + [0x80]
                pairs = ctl(0x14, 0x20) + ctl(0x14, 0x2E) + ctl(0x14, 0x60)
                pairs += list(zip(chars[::2], chars[1::2])) + ctl(0x14, 0x2F)
            # Field 1 at 50 fps: one pair per frame at most; the rest
            # goes on the next frames.
            feed.q = getattr(feed, "q", []) + pairs
            pair = feed.q.pop(0) if feed.q else (0x80, 0x80)
            buf = Gst.Buffer.new_wrapped(bytes(pair))
            buf.pts = n * Gst.SECOND // FPS
            buf.duration = Gst.SECOND // FPS
            src.emit("push-buffer", buf)
        src.emit("end-of-stream")

    p.set_state(Gst.State.PLAYING)
    threading.Thread(target=feed, daemon=True).start()
    msg = p.get_bus().timed_pop_filtered(600 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    p.set_state(Gst.State.NULL)
    if msg is None or msg.type != Gst.MessageType.EOS:
        sys.exit(f"bench-content: cannot make the input: {msg.parse_error() if msg else 'timeout'}")


class Counter(threading.Thread):
    """Counts the video PES (stream ids 0xE0–0xEF) of an MPEG-TS over UDP."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.frames = 0
        self.running = True

    def run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            for i in range(0, len(data) - 187, 188):
                pkt = data[i : i + 188]
                if pkt[0] != 0x47 or not pkt[1] & 0x40:
                    continue
                afc = (pkt[3] >> 4) & 3
                off = 4 + (1 + pkt[4] if afc in (2, 3) else 0)
                if afc != 2 and off + 4 <= 188 and pkt[off : off + 3] == b"\x00\x00\x01" and 0xE0 <= pkt[off + 3] <= 0xEF:
                    self.frames += 1

    def stop(self):
        self.running = False
        self.join(2)
        self.sock.close()


def config(src, port, carried):
    tracks = "".join(f'\n[[channel.audio]]\nid = "{lang}"\nlanguage = "{lang}"\n' for lang in LANGUAGES) if carried else ""
    return f"""
[[channel]]
id = "content"
video = {{ width = 1920, height = 1080, framerate = {FPS} }}
captions = "{'carry' if carried else 'drop'}"
pass_scte35 = {'true' if carried else 'false'}
{tracks}
[[channel.input]]
id = "feed"
uri = "file://{src}?loop=true"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 8000
keyframe_interval = "2s"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:{port}"
"""


def cpu_run(binary, src, carried, secs):
    with tempfile.TemporaryDirectory(prefix="nonstop-bench-content-") as d:
        port = free_port()
        rx = Counter(port)
        rx.start()
        proc, log = start_nonstopd(binary, d, config(src, port, carried), "--no-dbus", "--metrics", "")
        time.sleep(6)  # warm-up
        c0, t0, n0 = cpu_seconds(proc.pid), time.time(), rx.frames
        time.sleep(secs)
        c1, t1, n1 = cpu_seconds(proc.pid), time.time(), rx.frames
        stop(proc)
        rx.stop()
        log.close()
        text = open(os.path.join(d, "log")).read()
    return {
        "carried": carried,
        "cpu": (c1 - c0) / (t1 - t0),
        "fps": (n1 - n0) / (t1 - t0),
        "cues": text.count("event=\"cue\""),
    }


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "run":  # as scripts/bench calls it
        del sys.argv[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nonstopd", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--json")
    a = ap.parse_args()
    reps, secs = (1, 8) if a.quick else (a.reps, a.secs)
    with tempfile.TemporaryDirectory(prefix="nonstop-bench-content-src-") as d:
        src = os.path.join(d, "input.ts")
        make_input(src)
        runs = []
        for _ in range(reps):
            for carried in (True, False):
                r = cpu_run(a.nonstopd, src, carried, secs)
                print("bench-content:", r, file=sys.stderr)
                runs.append(r)
    print("#### Captions, SCTE-35 and four audio tracks carried (1920x1080 at 50 fps, x264 ultrafast 8 Mbit/s, "
          "a looped file input with 608 captions, a cue every 10 s and four AAC streams)\n")
    print("| channel | runs | CPU (% of a core) | output frames/s | cues placed per run |")
    print("| --- | --- | --- | --- | --- |")
    cpu = {}
    for carried in (True, False):
        rs = [r for r in runs if r["carried"] == carried]
        c = statistics.median(r["cpu"] for r in rs) * 100
        cpu[carried] = c
        label = 'captions = "carry", pass_scte35 = true, 4 tracks' if carried else 'captions = "drop", pass_scte35 = false, 1 track'
        print(f"| {label} | {len(rs)} | {c:.1f} ({min(r['cpu'] for r in rs) * 100:.1f}–{max(r['cpu'] for r in rs) * 100:.1f}) "
              f"| {statistics.median(r['fps'] for r in rs):.1f} | {statistics.median(r['cues'] for r in rs):.0f} |")
    if cpu.get(False):
        print(f"\nCarried / not: **{cpu[True] / cpu[False]:.3f}×** CPU (+{(cpu[True] / cpu[False] - 1) * 100:.1f} %).")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
