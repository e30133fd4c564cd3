"""The chaos harness's world: nonstopd (supervised as systemd would), the
senders feeding its inputs, the receivers recording its outputs, a network
namespace with netem for the lossy link, a small tmpfs for a recording.

Every process runs in its own process group so a kill takes its children.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"

FPS = 25
FRAME = 1.0 / FPS
SIZE = (640, 360)
TIMEOUT = 0.5  # the channels' `timeout`
RETURN_AFTER = 3.0  # the channels' `return_after`
# Flap damping: a failover within FLAP_WINDOW of the last one doubles the
# input's hold-off, up to MAX_RETURN_AFTER (one doubling here, so that
# faults on one channel, REST apart, still see their input return).
FLAP_WINDOW = 60.0
MAX_RETURN_AFTER = 6.0
BACKOFF_MAX = 4.0
SEGMENT = 20  # recording segment length, seconds
TMPFS_MB = 48


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def favour(pid):
    """Gives PID's scheduling group the weight of nice -10 (root only).

    Each process the harness starts is its own session, so with the
    kernel's autogroup scheduling it gets the CPU share of one group
    whatever its nice. nonstopd is favoured as on a box where it is the
    service that matters (nonstopd.service sets CPUWeight), and so are the
    receivers: a measuring instrument must not be starved. The senders and
    anything else on the machine are not."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as fh:
            fh.write("-10")
    except OSError:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, -10)
        except OSError:
            pass


class Proc:
    """A restartable background process in its own process group."""

    def __init__(self, name, argv, log, env=None, priority=False):
        self.name, self.argv, self.log, self.env = name, argv, log, env
        self.priority = priority
        self.p = None

    def start(self):
        out = open(self.log, "ab")
        self.p = subprocess.Popen(self.argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                  start_new_session=True, env=self.env)
        out.close()
        if self.priority:
            favour(self.p.pid)
        return self

    def signal(self, sig):
        if self.p and self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        if self.p:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def alive(self):
        return self.p is not None and self.p.poll() is None


def gst_sender(sink, size=SIZE, fps=FPS, channels=2, pattern="ball", freq=440):
    """gst-launch argv of a live H.264/AAC MPEG-TS sender into SINK."""
    w, h = size
    return ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true", f"pattern={pattern}",
            "!", f"video/x-raw,width={w},height={h},framerate={fps}/1",
            "!", "x264enc", "tune=zerolatency", "speed-preset=ultrafast", f"key-int-max={fps}",
            "bitrate=500", "!", "h264parse", "config-interval=-1", "!", "mux.",
            "audiotestsrc", "is-live=true", f"freq={freq}", "!",
            f"audio/x-raw,channels={channels}", "!", "audioconvert", "!", "avenc_aac", "!",
            "aacparse", "!", "mux.", "mpegtsmux", "name=mux", "alignment=7", "!"] + sink


class Netns:
    """A network namespace joined to the host by a veth pair, for netem.

    The sender inside sends to `host_ip`; netem on the namespace's end of
    the link loses or delays its packets."""

    def __init__(self, tag):
        n = os.getpid() % 200 + 20
        self.name = f"chaos-{tag}-{os.getpid()}"
        self.host_if, self.ns_if = f"chh{os.getpid() % 100000}", f"chn{os.getpid() % 100000}"
        self.host_ip, self.ns_ip = f"10.231.{n}.1", f"10.231.{n}.2"
        self.ok, self.why = False, ""

    def up(self):
        steps = [
            ["ip", "netns", "add", self.name],
            ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if],
            ["ip", "link", "set", self.ns_if, "netns", self.name],
            ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if],
            ["ip", "link", "set", self.host_if, "up"],
            ["ip", "-n", self.name, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if],
            ["ip", "-n", self.name, "link", "set", self.ns_if, "up"],
            ["ip", "-n", self.name, "link", "set", "lo", "up"],
        ]
        for s in steps:
            r = sh(*s, check=False)
            if r.returncode != 0:
                self.why = f"{' '.join(s)}: {r.stderr.strip()}"
                self.down()
                return False
        self.ok = True
        return True

    def exec_argv(self, argv):
        return ["ip", "netns", "exec", self.name] + argv if self.ok else argv

    def qdisc(self, *args):
        """A queueing discipline on the link ('netem loss 30%', 'tbf rate
        300kbit ...'); none: back to the default."""
        tc = ["ip", "netns", "exec", self.name, "tc", "qdisc"]
        if args:
            sh(*tc, "replace", "dev", self.ns_if, "root", *args)
        else:
            sh(*tc, "del", "dev", self.ns_if, "root", check=False)

    def has_netem(self):
        """Whether the kernel has sch_netem (some minimal kernels lack it)."""
        try:
            self.qdisc("netem", "delay", "1ms")
            self.qdisc()
            return True
        except subprocess.CalledProcessError as e:
            self.netem_why = e.stderr.strip()
            return False

    def down(self):
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.name, check=False)


class Tmpfs:
    """A small tmpfs under a recording, so the disk can be filled."""

    def __init__(self, path, mb):
        self.path, self.mb = path, mb
        self.ok, self.why = False, ""
        os.makedirs(path, exist_ok=True)

    def up(self):
        r = sh("mount", "-t", "tmpfs", "-o", f"size={self.mb}m", "chaos", self.path, check=False)
        self.ok, self.why = r.returncode == 0, r.stderr.strip()
        return self.ok

    def fill(self):
        """Fills the file system to the last byte; returns the bytes taken."""
        st = os.statvfs(self.path)
        free = st.f_bavail * st.f_frsize
        with open(os.path.join(self.path, "filler"), "wb") as f:
            try:
                f.write(b"\0" * free)
            except OSError:
                pass
        return free

    def free(self):
        try:
            os.remove(os.path.join(self.path, "filler"))
        except FileNotFoundError:
            pass

    def down(self):
        if self.ok:
            sh("umount", "-l", self.path, check=False)


class Daemon:
    """nonstopd, restarted 2 s after it dies, as packaging/nonstopd.service
    (`Restart=on-failure`, `RestartSec=2s`) would.

    Unexpected exits are recorded as crashes; `kill()` is the fault."""

    def __init__(self, work, config, bus, metrics_port, clock):
        self.work, self.config, self.bus, self.port = work, config, bus, metrics_port
        self.log = os.path.join(work, "nonstopd.log")
        self.clock = clock
        self.proc = None
        self.lives = []  # (pid, started, ended, exit status, expected)
        self.expect_exit = False
        self.stopping = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._supervise, daemon=True)

    def _spawn(self):
        # As packaging/nonstopd.service runs it.
        env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
        env.setdefault("MALLOC_ARENA_MAX", "2")
        argv = [os.path.join(ROOT, "target/release/nonstopd"), "--config", self.config,
                "--address", self.bus, "--metrics", f"127.0.0.1:{self.port}"]
        with open(self.log, "ab") as f:
            f.write(f"=== chaos: nonstopd starting at {time.time():.3f}\n".encode())
            self.proc = subprocess.Popen(argv, stdout=f, stderr=f, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env=env)
        favour(self.proc.pid)
        self.lives.append({"pid": self.proc.pid, "started": time.time(), "ended": None,
                           "status": None, "expected": False})

    def start(self):
        self._spawn()
        self.thread.start()

    def _supervise(self):
        while not self.stopping:
            p = self.proc
            status = p.wait()
            with self.lock:
                life = self.lives[-1]
                life["ended"], life["status"] = time.time(), status
                life["expected"] = self.expect_exit
                self.expect_exit = False
                if self.stopping:
                    return
            time.sleep(2.0)  # RestartSec=2s
            with self.lock:
                if not self.stopping:
                    self._spawn()

    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def kill(self):
        with self.lock:
            self.expect_exit = True
            os.kill(self.proc.pid, signal.SIGKILL)

    def stop(self):
        """SIGTERM, as systemd stops it; the exit status."""
        with self.lock:
            self.stopping = True
            self.expect_exit = True
            p = self.proc
        if p.poll() is None:
            p.terminate()
        try:
            status = p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            status = "hung"
        self.thread.join(5)
        return status


def http_json(port, path="/api/status", timeout=2.0):
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        body = r.read()
    return json.loads(body) if path.startswith("/api") else body.decode()


def proc_sample(pid):
    """RSS (bytes), open fds, threads, CPU seconds of a process."""
    with open(f"/proc/{pid}/status") as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)
    rss = int(st["VmRSS"].split()[0]) * 1024
    threads = int(st["Threads"])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, fds, threads, cpu


def private_bus(work):
    r = sh("dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1")
    addr, pid = r.stdout.split("\n")[:2]
    return addr.strip(), int(pid)


def which(cmd):
    return shutil.which(cmd) is not None
