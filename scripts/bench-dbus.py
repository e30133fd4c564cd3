#!/usr/bin/python3
"""D-Bus API latency of nonstopd (run by `scripts/bench --only dbus`).

Starts a private bus and nonstopd with N channels (default 16; two
160x120 test inputs each, x264 ultrafast, one UDP output), then measures
from a client on the same bus (GLib's GDBus through python3-gi):
- GetAll of org.nonstop.Supervisor1.Channel on a channel object;
- SwitchTo (alternating backup / primary) on a channel;
- Get of the manager's Channels property;
- and, as the peer from the same run, the bus daemon answering GetId
  itself: the floor any service on this bus and machine can reach.
Each call is timed round trip (request sent → reply parsed). Prints a
markdown table of p50 / p99 / max per call.

usage: bench-dbus.py [run] --nonstopd BIN [--channels N] [--calls N] [--quick]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from gi.repository import Gio, GLib
from benchlib import channels_config as config, pct  # noqa: E402

SVC = "org.nonstop.Supervisor1"
MGR = "/org/nonstop/Supervisor1"
CH = "org.nonstop.Supervisor1.Channel"






def timed(conn, path, iface, method, args, reply, dest=SVC):
    t0 = time.perf_counter()
    conn.call_sync(dest, path, iface, method, args, GLib.VariantType.new(reply), Gio.DBusCallFlags.NONE, 10000, None)
    return (time.perf_counter() - t0) * 1000


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        del sys.argv[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nonstopd", required=True)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    calls = 200 if a.quick else a.calls
    with tempfile.TemporaryDirectory(prefix="nonstop-bench-dbus-") as d:
        bus = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        addr = bus.stdout.readline().strip()
        cfg = os.path.join(d, "ch.toml")
        with open(cfg, "w") as f:
            f.write(config(a.channels, 40000))
        log = open(os.path.join(d, "log"), "w")
        daemon = subprocess.Popen([a.nonstopd, "--config", cfg, "--address", addr], stderr=log)
        try:
            conn = Gio.DBusConnection.new_for_address_sync(
                addr,
                Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
                None,
                None,
            )
            deadline = time.time() + 60
            path = None
            while time.time() < deadline:
                try:
                    path = conn.call_sync(SVC, MGR, SVC, "GetChannel", GLib.Variant("(s)", ("ch00",)), GLib.VariantType.new("(o)"), 0, 2000, None).unpack()[0]
                    state = conn.call_sync(SVC, path, "org.freedesktop.DBus.Properties", "Get", GLib.Variant("(ss)", (CH, "State")), GLib.VariantType.new("(v)"), 0, 2000, None).unpack()[0]
                    if state == "on-air":
                        break
                except GLib.Error:
                    pass
                time.sleep(0.2)
            else:
                sys.exit("bench-dbus: the channels did not go on air within 60 s")
            time.sleep(3)  # every channel settled
            getall, switch, channels, peer = [], [], [], []
            for i in range(calls):
                getall.append(timed(conn, path, "org.freedesktop.DBus.Properties", "GetAll", GLib.Variant("(s)", (CH,)), "(a{sv})"))
                channels.append(timed(conn, MGR, "org.freedesktop.DBus.Properties", "Get", GLib.Variant("(ss)", (SVC, "Channels")), "(v)"))
                # The peer: the bus daemon answering a call itself, same load.
                peer.append(timed(conn, "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId", None, "(s)", dest="org.freedesktop.DBus"))
                if i % 10 == 0:
                    target = "backup" if (i // 10) % 2 == 0 else "primary"
                    switch.append(timed(conn, path, CH, "SwitchTo", GLib.Variant("(s)", (target,)), "()"))
            conn.call_sync(SVC, path, CH, "SetMode", GLib.Variant("(s)", ("auto",)), None, 0, 2000, None)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
            bus.terminate()
            log.close()
    print(f"#### D-Bus call latency, {a.channels} channels running (round trip from a GDBus client on the same bus)\n")
    print("| call | calls | p50 (ms) | p99 (ms) | max (ms) | target |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, v, target in [
        ("GetAll on a channel object", getall, 2.0),
        ("SwitchTo", switch, None),
        ("Get Channels (manager)", channels, None),
        ("peer: the bus daemon's own GetId", peer, None),
    ]:
        t = f"p99 ≤ {target} ms: **{'met' if pct(v, 99) <= target else 'missed'}**" if target else ""
        print(f"| {name} | {len(v)} | {statistics.median(v):.2f} | {pct(v, 99):.2f} | {max(v):.2f} | {t} |")


if __name__ == "__main__":
    main()
