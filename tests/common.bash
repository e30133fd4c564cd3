# Shared helpers for the end-to-end tests (sourced).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# skipped WHAT: says a part of this test did not run, and why; scripts/test
# lists every such line at its end ($NONSTOP_SKIPS), so a green suite shows
# what it did not check.
skipped() {
  echo "   skipped: $*"
  if [[ -n ${NONSTOP_SKIPS:-} ]]; then echo "$(basename "$0"): $*" >>"$NONSTOP_SKIPS"; fi
}

# ts_steps FILE STREAM(v|a): prints "count min_step max_step" of the packet
# PTS of one stream, in seconds.
ts_steps() {
  ffprobe -v error -select_streams "$2" -show_entries packet=pts_time -of csv=p=0 "$1" |
    tr -d ',' | python3 -c '
import sys
t = sorted(float(x) for x in sys.stdin if x.strip())
d = [b - a for a, b in zip(t, t[1:])]
print(len(t), "%.6f" % min(d), "%.6f" % max(d))'
}

# expect_continuous FILE STREAM STEP MIN_COUNT: every PTS step equals STEP
# (within 1 ms) and there are at least MIN_COUNT packets.
expect_continuous() {
  local file=$1 stream=$2 step=$3 min_count=$4 count lo hi
  read -r count lo hi < <(ts_steps "$file" "$stream")
  echo "   $stream: $count packets, PTS step $lo .. $hi s (want $step)"
  python3 -c "import sys; sys.exit(0 if abs($lo-$step) < 0.001 and abs($hi-$step) < 0.001 else 1)" ||
    fail "$stream stream of $file is not continuous: steps $lo .. $hi, want $step"
  ((count >= min_count)) || fail "$stream stream of $file has $count packets, want >= $min_count"
}

# --- nonstopd end-to-end helpers ---------------------------------------------
NONSTOPD="$ROOT/target/release/nonstopd"
PY=/usr/bin/python3
PIDS=()
cleanup_pids() {
  local p
  exec 2>/dev/null # no "Killed" job notices at exit
  for p in "${PIDS[@]}"; do kill -KILL -- "-$p" "$p" || true; done
  rm -rf "$WORK"
}
trap cleanup_pids EXIT
[[ -n ${KEEP_WORK:-} ]] && trap - EXIT

now() { date +%s.%N; }

# free_port: a port free for both UDP and TCP on 127.0.0.1 (a test may use
# it for either; RTMP and HTTP are TCP, SRT and UDP are UDP), and never one
# this test was given before (none is held until its user binds it).
free_port() {
  "$PY" - "$WORK/ports" <<'PY'
import socket, sys
given = set()
try:
    given = {int(x) for x in open(sys.argv[1]).read().split()}
except FileNotFoundError:
    pass
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    if port in given:
        continue
    open(sys.argv[1], "a").write(f"{port}\n")
    print(port)
    break
PY
}

# spawn VAR CMD...: runs CMD in the background (its own process group, so a
# kill takes its children too), records its pid in VAR and for cleanup.
spawn() {
  local var=$1
  shift
  setsid "$@" &
  printf -v "$var" '%s' $!
  PIDS+=($!)
}

# wait_exit PID [TIMEOUT]: waits (at most TIMEOUT s, default 20) for a
# spawned child to exit and returns its status. A process that hangs is a
# failure with a message, not a stalled CI. (A child that has exited is a
# zombie until waited for, which `kill -0` still finds: read its state.)
wait_exit() {
  local pid=$1 timeout=${2:-20} deadline state
  deadline=$(($(date +%s) + timeout))
  while :; do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [[ -z $state || $state == Z ]] && break
    if (($(date +%s) >= deadline)); then
      local what
      what=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80 || true)
      kill -KILL -- "-$pid" "$pid" 2>/dev/null || true
      fail "process $pid ($what) did not exit within ${timeout}s"
    fi
    sleep 0.05
  done
  wait "$pid"
}

# kill_group PID: SIGKILL the process group spawned by `spawn`.
kill_group() { kill -KILL -- "-$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# wait_log FILE REGEX TIMEOUT [FROM_LINE]: waits for a line matching REGEX
# after line FROM_LINE (default 0) of FILE; prints "LINENO:LINE".
wait_log() {
  local file=$1 re=$2 timeout=$3 from=${4:-0} deadline hit
  deadline=$(($(date +%s%N) + ${timeout%.*} * 1000000000))
  while :; do
    hit=$(tail -n +"$((from + 1))" "$file" 2>/dev/null | grep -n -E -m1 "$re" || true)
    if [[ -n $hit ]]; then
      echo "$((${hit%%:*} + from)):${hit#*:}"
      return 0
    fi
    (($(date +%s%N) < deadline)) || { echo "--- log:" >&2; tail -n 40 "$file" >&2; fail "no log line /$re/ within ${timeout}s"; }
    sleep 0.05
  done
}

# log_time LINE: the epoch seconds of a nonstopd log line's timestamp.
log_time() {
  "$PY" -c 'import sys, datetime
t = sys.argv[1].split(":", 1)[1].split()[0]
print("%.6f" % datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp())' "$1"
}

# field LINE NAME: the value of NAME=... in a log line.
field() { sed -E "s/.*[[:space:]]$2=\"?([^\" ]*).*/\1/" <<<"$1"; }

# within LO VALUE HI WHAT: LO <= VALUE <= HI (floats), else fail.
within() {
  "$PY" -c 'import sys; lo, v, hi = map(float, sys.argv[1:4]); sys.exit(0 if lo <= v <= hi else 1)' "$1" "$2" "$3" ||
    fail "$4: $2 not within [$1, $3]"
  echo "   $4: $2 (bounds $1 .. $3)"
}

# decodes_clean FILE [SKIP_TAIL]: ffmpeg decodes the file without an error;
# with SKIP_TAIL (seconds) the end is not judged (a receiver killed mid-write).
decodes_clean() {
  local errs limit=() what="the whole file"
  if [[ -n ${2:-} ]]; then
    limit=(-t "$("$PY" -c "print(max(0.0, $(ffprobe -v error -show_entries format=duration -of csv=p=0 "$1") - $2))")")
    what="all but the last $2 s"
  fi
  errs=$(ffmpeg -nostdin -v error -i "$1" "${limit[@]}" -f null - 2>&1 | awk 'NR <= 5')
  [[ -z $errs ]] || fail "$1 does not decode cleanly: $errs"
  echo "   $(basename "$1"): $what decodes without errors"
}

# A live H.264/AAC MPEG-TS test sender: tests/tools/ts-sender (see there).
TS_SENDER="$ROOT/tests/tools/ts-sender"

# private_bus: starts a private D-Bus session bus for this test (stopped at
# exit); sets $addr to its address.
private_bus() {
  dbus-daemon --session --fork --print-address=1 --print-pid=1 >"$WORK/bus"
  addr=$(sed -n 1p "$WORK/bus")
  local pid
  pid=$(sed -n 2p "$WORK/bus")
  [[ -n $addr && $pid =~ ^[0-9]+$ ]] || fail "no private bus: $(cat "$WORK/bus")"
  PIDS+=("$pid")
}

# --- recipes of docs/senders.md ---------------------------------------------
SENDERS_DOC="$ROOT/docs/senders.md"
# doc_recipe NAME [KIND]: prints the fenced block after `<!-- KIND: NAME -->`
# (KIND: recipe, the default, or config) in docs/senders.md, as written;
# fails if there is none.
doc_recipe() {
  local text
  text=$(awk -v want="<!-- ${2:-recipe}: $1 -->" '
    $0 == want { found = 1; next }
    found && !inside && /^```/ { inside = 1; next }
    inside && /^```/ { exit }
    inside { print }' "$SENDERS_DOC")
  [[ -n $text ]] || fail "docs/senders.md has no ${2:-recipe} $1 (<!-- ${2:-recipe}: $1 --> before a fenced block)"
  printf '%s\n' "$text"
}
# doc_recipes: the names of every recipe in docs/senders.md, one a line.
doc_recipes() { sed -nE 's/^<!-- recipe: ([^ ]+) -->$/\1/p' "$SENDERS_DOC"; }

# private_net ARGS: the first call re-runs this test (with ARGS) in
# network and mount namespaces of its own, where it calls private_net
# again, which sets them up: loopback only, up, with a route for
# multicast (the groups stay on this box, nothing leaves it, and every
# port is free); /etc/hosts names nonstop.example.net and
# encoder.example.net (the docs' example hosts) 127.0.0.1. Run what needs
# the network (cargo) before it. Needs root.
private_net() {
  if [[ -z ${NONSTOP_PRIVATE_NET:-} ]]; then
    rm -rf "$WORK"
    exec env NONSTOP_PRIVATE_NET=1 unshare --net --mount bash "$0" "$@"
  fi
  ip link set lo up
  ip route add 224.0.0.0/4 dev lo
  { cat /etc/hosts; echo "127.0.0.1 nonstop.example.net encoder.example.net"; } >"$WORK/hosts"
  mount --bind "$WORK/hosts" /etc/hosts
}

# programme_mp4: writes programme.mp4, the recipes' programme, in the
# current directory: 12 s of a moving test picture and a tone (the
# recipes loop it, -stream_loop -1); 320x180, so that several senders
# re-encoding it cost a loaded machine little.
programme_mp4() {
  ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=320x180:rate=25 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 12 \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac programme.mp4
}

# send_recipe NAME VAR: runs the recipe NAME of docs/senders.md as written
# (bash, in the current directory, stdin from /dev/null; its output in
# NAME.log there), spawned: its pid in VAR.
send_recipe() {
  doc_recipe "$1" >"$1.sh"
  spawn "$2" bash "$1.sh" </dev/null >"$1.log" 2>&1
}
