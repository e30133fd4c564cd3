#!/usr/bin/python3
"""A UDP relay that loses and delays packets, like netem, for kernels
without sch_netem. The chaos harness puts it on the lossy link and changes
its settings by rewriting CONTROL (JSON: {"loss": %, "delay": ms,
"jitter": ms}); it is read every 100 ms. Jitter reorders, as netem's does.

One way (the default): what arrives at LISTEN goes to DEST, impaired.
With `both`, it is a link for a two-way protocol such as SRT: what DEST
answers goes back to whoever last sent to LISTEN, impaired the same way
(the delay applies each way, so the round trip grows by twice it).

usage: impair.py LISTEN_HOST:PORT DEST_HOST:PORT CONTROL SEED [both]
"""

import heapq
import json
import os
import random
import select
import socket
import sys
import time


def main():
    lhost, lport = sys.argv[1].rsplit(":", 1)
    dhost, dport = sys.argv[2].rsplit(":", 1)
    control, rng = sys.argv[3], random.Random(int(sys.argv[4]))
    both = len(sys.argv) > 5 and sys.argv[5] == "both"
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind((lhost, int(lport)))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    dest = (dhost, int(dport))
    settings, mtime, checked = {"loss": 0, "delay": 0, "jitter": 0}, 0.0, 0.0
    # (due, seq, data, the socket it leaves by, to whom)
    queue, seq, client = [], 0, None
    while True:
        now = time.monotonic()
        if now - checked > 0.1:
            checked = now
            try:
                m = os.stat(control).st_mtime
                if m != mtime:
                    mtime = m
                    with open(control) as fh:
                        settings = {**settings, **json.load(fh)}
            except (OSError, ValueError):
                pass
        while queue and queue[0][0] <= now:
            _, _, data, sock, to = heapq.heappop(queue)
            sock.sendto(data, to)
        wait = min(0.005, queue[0][0] - now) if queue else 0.05
        ready, _, _ = select.select([rx, tx] if both else [rx], [], [], max(0.0005, wait))
        for s in ready:
            data, sender = s.recvfrom(65536)
            if s is rx:
                client = sender
                out, to = tx, dest
            elif client is not None:
                out, to = rx, client
            else:
                continue
            if rng.random() * 100 < settings["loss"]:
                continue
            delay = settings["delay"] + rng.uniform(-1, 1) * settings["jitter"]
            if delay <= 0 and not queue:
                out.sendto(data, to)
            else:
                seq += 1
                heapq.heappush(queue, (time.monotonic() + max(0.0, delay) / 1000, seq, data, out, to))


if __name__ == "__main__":
    main()
