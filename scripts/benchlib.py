"""Shared helpers of the benchmark harnesses in scripts/ (stdlib only)."""

import os
import signal
import socket
import subprocess

CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    """A free UDP/TCP port on 127.0.0.1."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(v, p):
    """The p-th percentile of v (nearest rank)."""
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK


def start_nonstopd(binary, dir_, text, *args):
    """nonstopd on config `text` (written to DIR/ch.toml), logging at info
    to DIR/log; returns the process and the open log."""
    path = os.path.join(dir_, "ch.toml")
    with open(path, "w") as f:
        f.write(text)
    log = open(os.path.join(dir_, "log"), "w")
    env = dict(os.environ, RUST_LOG="info")
    proc = subprocess.Popen([binary, "--config", path, *args], stderr=log, stdout=subprocess.DEVNULL, env=env)
    return proc, log


def stop(proc):
    """SIGINT, then SIGKILL after 10 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def channels_config(n, base_port):
    """n light channels: two 160x120 test inputs, x264 ultrafast, a UDP
    output each (the load for the API and metrics benchmarks)."""
    out = []
    for c in range(n):
        out.append(f"""
[[channel]]
id = "ch{c:02d}"
video = {{ width = 160, height = 120, framerate = 25 }}

[[channel.input]]
id = "primary"
uri = "test://ball?label=P{c}"

[[channel.input]]
id = "backup"
uri = "test://smpte?label=B{c}"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 300

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:{base_port + c}"
""")
    return "".join(out)
