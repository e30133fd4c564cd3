#!/usr/bin/python3
"""An MPEG-TS receiver that judges what it gets, for the chaos harness.

It reads a TS stream (UDP datagrams, an SRT listener through GStreamer, or
a file), follows the video PES timestamps and the arrival times, and writes
JSON lines to --log:

  {"ev": "start", "t": ...}                          (receiver started)
  {"ev": "first", "t": ...}                          (the first bytes)
  {"ev": "sec", "t": ..., "bytes": N, "frames": N, "mx": MS}
                                       (once a second; mx: longest arrival gap)
  {"ev": "pts", "t": ..., "step": S, "pts": P}       (a video PTS step that is not one frame)
  {"ev": "gap", "t": ..., "from": T0, "gap": S}      (nothing arrived for S seconds)
  {"ev": "end", "t": ...}

Times are wall clock (time.time()); PTS in seconds. Only anomalies are
written per event, so an hour's log stays small.

usage: tsrecv.py (--udp HOST:PORT | --srt PORT | --file FILE) --log FILE
                 [--frame 0.04] [--gap 0.2]
"""

import argparse
import json
import os
import signal
import socket
import struct
import sys
import time

TS = 188
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux
WRAP = 1 << 33


class Judge:
    """Follows one TS byte stream: video PTS continuity and arrival gaps."""

    def __init__(self, out, frame=0.04, gap=0.2, clock=time.time):
        self.out = out
        self.frame = frame
        self.gap_bound = gap
        self.clock = clock
        self.rest = b""
        self.video_pid = None
        self.pmt_pids = set()
        self.last_pts = None
        self.last_arrival = None
        self.sec_start = None
        self.sec_bytes = 0
        self.sec_frames = 0
        self.sec_mx = 0.0
        self.frames = 0
        self.bytes = 0
        self.pts_list = None  # set to a list to keep every PTS (files)

    def emit(self, **ev):
        if self.out is not None:
            self.out.write(json.dumps(ev) + "\n")
            self.out.flush()

    def feed(self, data, now=None):
        now = self.clock() if now is None else now
        if self.last_arrival is None:
            self.emit(ev="first", t=round(now, 3))
        else:
            self.sec_mx = max(self.sec_mx, now - self.last_arrival)
        if self.last_arrival is not None and now - self.last_arrival > self.gap_bound:
            self.emit(ev="gap", t=round(now, 3), **{"from": round(self.last_arrival, 3)},
                      gap=round(now - self.last_arrival, 3))
        self.last_arrival = now
        if self.sec_start is None:
            self.sec_start = now
        self.sec_bytes += len(data)
        self.bytes += len(data)
        buf = self.rest + data
        i = 0
        # Resynchronise on the sync byte, confirmed by the next packet's when
        # it is there: garbage and cut packets are skipped.
        while len(buf) - i >= TS:
            if buf[i] != 0x47 or (len(buf) - i > TS and buf[i + TS] != 0x47):
                i += 1
                continue
            self.packet(buf[i:i + TS], now)
            i += TS
        self.rest = buf[i:]
        if now - self.sec_start >= 1.0:
            self.emit(ev="sec", t=round(now, 3), bytes=self.sec_bytes, frames=self.sec_frames,
                      mx=round(self.sec_mx * 1000))
            self.sec_start, self.sec_bytes, self.sec_frames, self.sec_mx = now, 0, 0, 0.0

    def packet(self, p, now):
        pid = ((p[1] & 0x1F) << 8) | p[2]
        pusi = p[1] & 0x40
        afc = (p[3] >> 4) & 3
        off = 4
        if afc & 2:
            off += 1 + p[4]
        if not afc & 1 or off >= TS:
            return
        payload = p[off:]
        if pid == 0 and pusi:
            self.pat(payload)
        elif pid in self.pmt_pids and pusi:
            self.pmt(payload)
        elif pid == self.video_pid and pusi:
            self.pes(payload, now)

    def pat(self, payload):
        sec = payload[1 + payload[0]:]
        if len(sec) < 8:
            return
        length = ((sec[1] & 0x0F) << 8) | sec[2]
        body = sec[8:3 + length - 4]
        for j in range(0, len(body) - 3, 4):
            program = (body[j] << 8) | body[j + 1]
            if program != 0:
                self.pmt_pids.add(((body[j + 2] & 0x1F) << 8) | body[j + 3])

    def pmt(self, payload):
        sec = payload[1 + payload[0]:]
        if len(sec) < 12:
            return
        length = ((sec[1] & 0x0F) << 8) | sec[2]
        info = ((sec[10] & 0x0F) << 8) | sec[11]
        j, end = 12 + info, min(3 + length - 4, len(sec))
        while j + 5 <= end:
            stype, epid = sec[j], ((sec[j + 1] & 0x1F) << 8) | sec[j + 2]
            if stype in (0x1B, 0x24, 0x02, 0x10) and self.video_pid is None:
                self.video_pid = epid
            j += 5 + (((sec[j + 3] & 0x0F) << 8) | sec[j + 4])

    def pes(self, payload, now):
        if len(payload) < 14 or payload[:3] != b"\x00\x00\x01" or not payload[7] & 0x80:
            return
        b = payload[9:14]
        pts = (((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1)
        self.frames += 1
        self.sec_frames += 1
        if self.pts_list is not None:
            self.pts_list.append(pts / 90000.0)
        if self.last_pts is not None:
            step = ((pts - self.last_pts) % WRAP) / 90000.0
            if step > WRAP / 2 / 90000.0:
                step -= WRAP / 90000.0
            if abs(step - self.frame) > 0.002:
                self.emit(ev="pts", t=round(now, 3), step=round(step, 4), pts=round(pts / 90000.0, 4))
        self.last_pts = pts


def scan_file(path, frame=0.04):
    """A recording's video PTS (seconds, in order), and its anomalies."""
    events = []

    class Sink:
        def write(self, s):
            events.append(json.loads(s))

        def flush(self):
            pass

    j = Judge(Sink(), frame=frame, gap=1e9, clock=lambda: 0.0)
    j.pts_list = []
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            j.feed(chunk, now=0.0)
    return j.pts_list, [e for e in events if e["ev"] == "pts"]


def main():
    ap = argparse.ArgumentParser()
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--udp")
    src.add_argument("--srt", type=int)
    ap.add_argument("--log", required=True)
    ap.add_argument("--frame", type=float, default=0.04)
    ap.add_argument("--gap", type=float, default=0.2)
    a = ap.parse_args()
    out = open(a.log, "a", buffering=1)
    judge = Judge(out, a.frame, a.gap)
    judge.emit(ev="start", t=round(time.time(), 3), pid=os.getpid())

    def stop(*_):
        judge.emit(ev="end", t=round(time.time(), 3), frames=judge.frames, bytes=judge.bytes)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.udp:
        host, port = a.udp.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((host, int(port)))
        # The kernel's arrival time of each datagram, not the time this
        # process got round to reading it: a late receiver is not a late
        # sender.
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        while True:
            data, anc, _, _ = s.recvmsg(65536, 64)
            t = None
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    t = sec + nsec / 1e9
            judge.feed(data, now=t)
    else:
        import gi

        gi.require_version("Gst", "1.0")
        from gi.repository import Gst

        Gst.init(None)
        p = Gst.parse_launch(
            f"srtsrc uri=srt://127.0.0.1:{a.srt}?mode=listener latency=125 "
            "! appsink name=s sync=false max-buffers=200 drop=false")
        sink = p.get_by_name("s")
        p.set_state(Gst.State.PLAYING)
        while True:
            sample = sink.emit("try-pull-sample", Gst.SECOND)
            if sample is None:
                if sink.get_property("eos"):
                    # The caller went away: srtsrc ends; listen again.
                    p.set_state(Gst.State.NULL)
                    p.set_state(Gst.State.PLAYING)
                continue
            buf = sample.get_buffer()
            ok, info = buf.map(Gst.MapFlags.READ)
            if ok:
                judge.feed(bytes(info.data))
                buf.unmap(info)


if __name__ == "__main__":
    sys.exit(main())
