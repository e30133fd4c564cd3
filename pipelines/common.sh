# shellcheck shell=bash
# Shared by the recipes in pipelines/ (and scripts/demo); not a recipe itself.
# Source it, then call the functions below. It provides:
#   - ROOT and GST_PLUGIN_PATH (the workspace's target/release),
#   - the options every recipe takes (--duration, --file, --udp, --help),
#   - the caps, labels and MPEG-TS output the recipes share,
#   - nonstop_run: runs a gst-launch description with python3-gi, closes and
#     opens valves on a schedule (to make inputs stall and recover), prints
#     each nonstop-switch / nonstop-input message as one readable line, and
#     stops cleanly (EOS, so a file output is complete) on Ctrl-C or after
#     --duration.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GST_PLUGIN_PATH="$ROOT/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"

# Defaults; recipes may change them before calling nonstop_parse_common.
DURATION=0            # seconds; 0 = until Ctrl-C
OUT_FILE=""
UDP_HOST=127.0.0.1
UDP_PORT=5000
WIDTH=1280
HEIGHT=720
FPS=25

nonstop_die() { echo "${0##*/}: $*" >&2; exit 2; }

# nonstop_need_secs OPTION VALUE: dies unless VALUE is a number of seconds.
nonstop_need_secs() { [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || nonstop_die "$1 needs seconds, got '${2:-}'"; }

# Parses the common options; unknown options are handed to the recipe's
# nonstop_option function (which returns the number of arguments it used,
# 0 if it does not know the option).
nonstop_parse_common() {
  while (($#)); do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      --duration) nonstop_need_secs "$1" "${2:-}"; DURATION="$2"; shift 2 ;;
      --file) [[ $# -ge 2 ]] || nonstop_die "--file needs a path"; OUT_FILE="$2"; shift 2 ;;
      --udp) [[ $# -ge 2 && $2 == *:* ]] || nonstop_die "--udp needs HOST:PORT"
             UDP_HOST="${2%:*}"; UDP_PORT="${2##*:}"; shift 2 ;;
      --size) [[ $# -ge 2 && $2 =~ ^[0-9]+x[0-9]+$ ]] || nonstop_die "--size needs WxH, e.g. 1280x720"
              WIDTH="${2%x*}"; HEIGHT="${2#*x}"; shift 2 ;;
      --fps) [[ $# -ge 2 && $2 =~ ^[0-9]+(/[0-9]+)?$ ]] || nonstop_die "--fps needs N or N/D"
             FPS="$2"; shift 2 ;;
      *)
        local used=0
        if declare -F nonstop_option >/dev/null; then
          nonstop_option "$@" || used=$?
        fi
        ((used > 0)) || nonstop_die "unknown option '$1' (see --help)"
        shift "$used" ;;
    esac
  done
}

# Options of the recipes that stall inputs on a schedule; call it from
# nonstop_option. --stall and --every only exist where the recipe sets
# STALL / EVERY.
nonstop_schedule_option() {
  case "$1" in
    --stall) [[ -n ${STALL+x} ]] || return 0
             nonstop_need_secs "$1" "${2:-}"; STALL="$2"; return 2 ;;
    --every) [[ -n ${EVERY+x} ]] || return 0
             nonstop_need_secs "$1" "${2:-}"; EVERY="$2"; return 2 ;;
    --return-after) nonstop_need_secs "$1" "${2:-}"; RETURN_AFTER="$2"; return 2 ;;
  esac
  return 0
}

# seconds_to_ns SEC: a duration in nanoseconds, as GStreamer properties want.
seconds_to_ns() {
  awk -v s="$1" 'BEGIN { printf "%.0f", s * 1e9 }'
}

# Help text for the common options.
nonstop_common_usage() {
  cat <<EOF
Output (MPEG-TS, H.264${1:+ + AAC}):
  --udp HOST:PORT   send to UDP (default 127.0.0.1:5000)
  --file PATH       write to a file instead
Common:
  --duration SEC    stop cleanly after SEC seconds (default: run until Ctrl-C)
  --size WxH        picture size (default 1280x720)
  --fps N[/D]       frame rate (default 25)
  -h, --help        this help
Watch a UDP output with:  ffplay udp://127.0.0.1:5000
                     or:  gst-launch-1.0 udpsrc port=5000 ! tsdemux ! decodebin ! autovideosink
EOF
}

nonstop_check_built() {
  [[ -f "$ROOT/target/release/libgstnonstop.so" ]] ||
    nonstop_die "target/release/libgstnonstop.so not found: run 'cargo build --release -p gst-plugin-nonstop' in $ROOT"
  gst-inspect-1.0 nonstopswitch >/dev/null 2>&1 ||
    nonstop_die "GStreamer cannot load nonstopswitch from $ROOT/target/release (try: GST_PLUGIN_PATH=$ROOT/target/release gst-inspect-1.0 nonstopswitch)"
}

have_element() { gst-inspect-1.0 "$1" >/dev/null 2>&1; }

# Raw video caps every input is normalised to. The switch requires identical
# caps on all inputs and compares them field by field, so they are written
# out in full (see docs/elements.md, "Inputs and caps").
video_caps() {
  local fps="$FPS"; [[ $fps == */* ]] || fps="$fps/1"
  echo "video/x-raw,format=I420,width=$WIDTH,height=$HEIGHT,framerate=$fps"
}

audio_caps() { echo "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2"; }

# "textoverlay ... ! " with a big label, or nothing when the pango plugin
# (Debian package gstreamer1.0-x) is not installed.
# An optional second argument places it: "center" for a slate card.
label() {
  have_element textoverlay || return 0
  local place="valignment=top halignment=left" font="Sans Bold 48"
  [[ ${2:-} == center ]] && place="valignment=center halignment=center" font="Sans Bold 32"
  echo "textoverlay text=\"$1\" $place wrap-mode=none font-desc=\"$font\" shaded-background=true ! "
}

# Output running time burnt in after the switch: it keeps counting through
# every failover, which is the point.
clock_overlay() {
  have_element timeoverlay || return 0
  echo "timeoverlay halignment=right valignment=bottom font-desc=\"Sans 32\" shaded-background=true ! "
}

labels_note() {
  have_element textoverlay ||
    echo "note: textoverlay/timeoverlay missing (Debian: apt-get install gstreamer1.0-x); inputs are told apart by their test pattern only" >&2
}

# Encoder for the switched video, ending in the muxer named mux.
video_encode() {
  echo "videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50 bitrate=3000 ! h264parse config-interval=-1 ! queue max-size-time=1000000000 max-size-buffers=0 max-size-bytes=0 ! mux."
}

audio_encode() {
  echo "audioconvert ! avenc_aac bitrate=128000 ! aacparse ! queue max-size-time=1000000000 max-size-buffers=0 max-size-bytes=0 ! mux."
}

# The muxer and sink.
ts_output() {
  if [[ -n $OUT_FILE ]]; then
    echo "mpegtsmux name=mux ! filesink location=\"$OUT_FILE\""
  else
    echo "mpegtsmux name=mux alignment=7 ! udpsink host=$UDP_HOST port=$UDP_PORT"
  fi
}

where_output() {
  if [[ -n $OUT_FILE ]]; then
    echo "writing MPEG-TS to $OUT_FILE"
  else
    echo "sending MPEG-TS to udp://$UDP_HOST:$UDP_PORT"
    echo "  watch: ffplay udp://$UDP_HOST:$UDP_PORT"
    echo "     or: gst-launch-1.0 udpsrc port=$UDP_PORT ! tsdemux ! decodebin ! autovideosink"
  fi
}

# System python: Debian's python3-gi is installed for /usr/bin/python3, not
# for a pyenv / venv python that may come first in PATH.
nonstop_python() {
  local p
  for p in /usr/bin/python3 python3; do
    if "$p" -c 'import gi; gi.require_version("Gst", "1.0")' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  nonstop_die "python3 with GStreamer introspection not found: run scripts/bootstrap (installs python3-gi gir1.2-gstreamer-1.0)"
}

# nonstop_run [runner options] DESCRIPTION
#   --duration SEC               stop after SEC seconds (0 = until Ctrl-C)
#   --cut VALVE:STALL:PERIOD[:OFFSET]
#                                close valve VALVE (drop=true) for STALL seconds
#                                every PERIOD seconds, first at OFFSET (default
#                                PERIOD - STALL), in pipeline running time
#   --set TIME:ELEMENT:PROP=VALUE
#                                set a property at TIME seconds; for active-pad
#                                VALUE is a pad name (sink_1)
#   --name PAD=LABEL             print "sink_0 (primary)" instead of "sink_0"
#   --inputs                     also print nonstop-input messages
nonstop_run() {
  local py
  py="$(nonstop_python)"
  "$py" -u -c "$NONSTOP_RUNNER" "$@"
}

read -r -d '' NONSTOP_RUNNER <<'PY' || true
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ap = argparse.ArgumentParser(prog="nonstop_run")
ap.add_argument("--duration", type=float, default=0.0)
ap.add_argument("--cut", action="append", default=[])
ap.add_argument("--set", action="append", default=[])
ap.add_argument("--name", action="append", default=[])
ap.add_argument("--inputs", action="store_true")
ap.add_argument("description")
args = ap.parse_args()

Gst.init(None)
try:
    pipeline = Gst.parse_launch(args.description)
except GLib.Error as e:
    sys.exit(f"cannot build the pipeline: {e.message}")

names = dict(n.split("=", 1) for n in args.name)


def pad_label(p):
    if p is None:
        return "(nothing)"
    return f"{p} ({names[p]})" if p in names else p


def secs(ns):
    return "       -" if ns is None or ns == Gst.CLOCK_TIME_NONE else f"{ns / 1e9:8.3f}"


def running_time():
    clock = pipeline.get_clock()
    if clock is None or pipeline.get_state(0)[1] != Gst.State.PLAYING:
        return None
    return clock.get_time() - pipeline.get_base_time()


def say(ns, what):
    print(f"{secs(ns)}  {what}", flush=True)


class Cut:
    def __init__(self, spec):
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            sys.exit(f"--cut {spec}: expected VALVE:STALL:PERIOD[:OFFSET]")
        self.name = parts[0]
        self.stall, self.period = float(parts[1]), float(parts[2])
        self.offset = float(parts[3]) if len(parts) == 4 else self.period - self.stall
        self.valve = pipeline.get_by_name(self.name)
        if self.valve is None:
            sys.exit(f"--cut {spec}: no element named {self.name}")
        self.closed = False

    def update(self, t):
        closed = t >= self.offset and (t - self.offset) % self.period < self.stall
        if closed != self.closed:
            self.closed = closed
            self.valve.set_property("drop", closed)
            what = f"stops sending for {self.stall:g} s" if closed else "sends again"
            say(int(t * 1e9), f"[test] {self.name}: input {what}")


class Setter:
    def __init__(self, spec):
        try:
            t, elem, assign = spec.split(":", 2)
            self.prop, self.value = assign.split("=", 1)
            self.t = float(t)
        except ValueError:
            sys.exit(f"--set {spec}: expected TIME:ELEMENT:PROP=VALUE")
        self.elem = pipeline.get_by_name(elem)
        if self.elem is None:
            sys.exit(f"--set {spec}: no element named {elem}")
        self.done = False

    def update(self, t):
        if self.done or t < self.t:
            return
        self.done = True
        if self.prop == "active-pad":
            pad = self.elem.get_static_pad(self.value)
            if pad is None:
                sys.exit(f"--set: {self.elem.get_name()} has no pad {self.value}")
            self.elem.set_property("active-pad", pad)
        else:
            Gst.util_set_object_arg(self.elem, self.prop, self.value)
        say(int(t * 1e9), f"[test] set {self.elem.get_name()}.{self.prop}={self.value}")


cuts = [Cut(c) for c in args.cut]
setters = [Setter(s) for s in args.set]
switches = []
pipeline.iterate_recurse().foreach(
    lambda e: e.get_factory() and e.get_factory().get_name() == "nonstopswitch"
    and switches.append(e))
switches.sort(key=lambda e: e.get_name())
loop = GLib.MainLoop()
state = {"stopping": False, "rc": 0}


def tick():
    rt = running_time()
    if rt is None or state["stopping"]:
        return True
    t = rt / 1e9
    for c in cuts:
        c.update(t)
    for s in setters:
        s.update(t)
    if args.duration and t >= args.duration:
        stop("duration reached")
    return True


def stop(why):
    if state["stopping"]:
        print("stopping now", file=sys.stderr)
        pipeline.set_state(Gst.State.NULL)
        loop.quit()
        return
    state["stopping"] = True
    say(running_time(), f"[stop] {why}: ending the stream (EOS)")
    for c in cuts:
        c.valve.set_property("drop", False)
    # Inputs such as imagefreeze never end by themselves: end every switch
    # input, so each switch sends EOS and the muxer finishes the file.
    for sw in switches:
        pads = []
        sw.iterate_sink_pads().foreach(pads.append)
        for pad in pads:
            pad.send_event(Gst.Event.new_eos())
    GLib.timeout_add_seconds(5, force_stop)


def force_stop():
    print("no EOS after 5 s; stopping anyway", file=sys.stderr)
    loop.quit()
    return False


def on_signal():
    stop("interrupted")
    return True


def on_message(bus, msg):
    t = msg.type
    if t == Gst.MessageType.ELEMENT:
        s = msg.get_structure()
        src = msg.src.get_name()
        if s.get_name() == "nonstop-switch":
            line = (f"{src}: {pad_label(s.get_string('from'))} -> "
                    f"{pad_label(s.get_string('to'))}  [{s.get_string('reason')}]")
            ok, stalled = s.get_uint64("stall-duration")
            if ok and stalled:
                line += f"  (no data for {stalled / 1e9:.2f} s)"
            say(s.get_uint64("running-time")[1], line)
        elif s.get_name() == "nonstop-input" and args.inputs:
            say(s.get_uint64("running-time")[1],
                f"{src}: input {pad_label(s.get_string('pad'))} {s.get_string('state')}")
    elif t == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        print(f"ERROR from {msg.src.get_path_string()}: {err.message}\n  {dbg}", file=sys.stderr)
        state["rc"] = 1
        loop.quit()
    elif t == Gst.MessageType.WARNING:
        err, dbg = msg.parse_warning()
        print(f"WARNING from {msg.src.get_path_string()}: {err.message}", file=sys.stderr)
    elif t == Gst.MessageType.EOS:
        say(running_time(), "[stop] end of stream")
        loop.quit()
    return True


bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, on_signal)
GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, on_signal)
GLib.timeout_add(20, tick)

if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
    # The reason is on the bus.
    msg = bus.timed_pop_filtered(Gst.SECOND, Gst.MessageType.ERROR)
    if msg:
        on_message(bus, msg)
    sys.exit(1)
print("running time  event (Ctrl-C to stop)", flush=True)
loop.run()
for sw in switches:
    stats = ", ".join(f"{p} {sw.get_property(p)}"
                      for p in ("switches", "frames-out", "frames-repeated", "frames-black"))
    print(f"{sw.get_name()}: {stats}")
pipeline.set_state(Gst.State.NULL)
sys.exit(state["rc"])
PY
