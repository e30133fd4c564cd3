#!/usr/bin/python3
"""A UDP relay that loses and delays packets, like netem, for kernels
without sch_netem. The chaos harness puts it on the lossy link and changes
its settings by rewriting CONTROL (JSON: {"loss": %, "delay": ms,
"jitter": ms}); it is read every 100 ms. Jitter reorders, as netem's does.

usage: impair.py LISTEN_HOST:PORT DEST_HOST:PORT CONTROL SEED
"""

import heapq
import json
import os
import random
import socket
import sys
import time


def main():
    lhost, lport = sys.argv[1].rsplit(":", 1)
    dhost, dport = sys.argv[2].rsplit(":", 1)
    control, rng = sys.argv[3], random.Random(int(sys.argv[4]))
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    rx.bind((lhost, int(lport)))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dest = (dhost, int(dport))
    settings, mtime, checked = {"loss": 0, "delay": 0, "jitter": 0}, 0.0, 0.0
    queue, seq = [], 0
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
            tx.sendto(heapq.heappop(queue)[2], dest)
        wait = min(0.005, queue[0][0] - now) if queue else 0.05
        rx.settimeout(max(0.0005, wait))
        try:
            data = rx.recv(65536)
        except socket.timeout:
            continue
        if rng.random() * 100 < settings["loss"]:
            continue
        delay = settings["delay"] + rng.uniform(-1, 1) * settings["jitter"]
        if delay <= 0 and not queue:
            tx.sendto(data, dest)
        else:
            seq += 1
            heapq.heappush(queue, (time.monotonic() + max(0.0, delay) / 1000, seq, data))


if __name__ == "__main__":
    main()
