#!/usr/bin/env bash
# The systemd notify protocol without systemd: a listener on a unix datagram
# socket stands in for NOTIFY_SOCKET and records every message with a
# monotonic timestamp. nonstopd must send READY=1, then WATCHDOG=1 every
# WATCHDOG_USEC/2, a STATUS= naming the channel on air, and on SIGTERM
# STOPPING=1 and exit 0 within 6 s. SIGHUP reloads the config (RELOADING=1 …
# READY=1), whether it adds a channel, changes nothing or is broken; it
# never stops nonstopd. A channel whose event loop hangs
# (NONSTOPD_TEST_HANG) stops the keepalive. Without NOTIFY_SOCKET (or with one nobody
# listens on) it must run all the same.
set -euo pipefail
source "$(dirname "$0")/common.bash"

PY=/usr/bin/python3
# What this test started, killed on exit (pass or fail); then $WORK goes.
pids=()
cleanup() {
  local p
  exec 2>/dev/null # no "Killed" job notices
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet -p nonstop-supervisor
bin="$ROOT/target/release/nonstopd"

# Seconds on CLOCK_MONOTONIC, the clock the listener stamps with.
mono() { "$PY" -c 'import time; print("%.6f" % time.monotonic())'; }

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds;
# returns 1 once SECONDS have passed.
wait_for() {
  local limit=$1 deadline
  shift
  deadline=$("$PY" -c "import time; print(time.monotonic() + $limit)")
  until "$@"; do
    "$PY" -c "import sys, time; sys.exit(time.monotonic() > $deadline)" || return 1
    sleep 0.05
  done
}

port=$("$PY" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cfg="$WORK/notify.toml"
cat >"$cfg" <<EOF
[[channel]]
id = "notifytest"
video = { width = 320, height = 240, framerate = 25 }

[[channel.input]]
id = "A"
uri = "test://ball?label=A"

[[channel.input]]
id = "slate"
uri = "slate://colour/black"

[channel.encoder]
preset = "ultrafast"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$port"
EOF
"$bin" check "$cfg" >/dev/null || fail "nonstopd check rejects the test config"

# The stand-in for systemd: one line "<monotonic s> <assignment>" per line
# of every datagram.
sock="$WORK/notify.sock"
msgs="$WORK/notify.txt"
: >"$msgs"
"$PY" - "$sock" "$msgs" <<'EOF' &
import socket, sys, time
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    while True:
        data = s.recv(65536)
        t = time.monotonic()
        for line in data.decode(errors="replace").splitlines():
            f.write("%.6f %s\n" % (t, line))
EOF
pids+=($!)
wait_for 5 test -S "$sock" || fail "the notify listener did not bind $sock"

# start_nonstopd TAG [ENV...]: runs nonstopd on $cfg with the given
# environment; its pid goes to $WORK/TAG.pid, its exit status (once it exits)
# to $WORK/TAG.rc, stderr to $WORK/TAG.log. WATCHDOG_PID is set to nonstopd's
# own pid, as systemd does (sd-notify only honours WATCHDOG_USEC with it).
start_nonstopd() {
  local tag=$1
  shift
  (
    set +e
    exec 2>/dev/null # no "Killed" notice when a test kills it (its log is below)
    env "$@" bash -c 'echo $$ >"$0.pid"; [[ -n "${WATCHDOG_USEC:-}" ]] && export WATCHDOG_PID=$$; exec "$1" --config "$2"' \
      "$WORK/$tag" "$bin" "$cfg" 2>"$WORK/$tag.log"
    echo $? >"$WORK/$tag.rc.tmp"
    mv "$WORK/$tag.rc.tmp" "$WORK/$tag.rc"
  ) &
  pids+=($!)
  wait_for 5 test -s "$WORK/$tag.pid" || fail "$tag: nonstopd did not start"
  pids+=("$(cat "$WORK/$tag.pid")")
}

running() { [[ ! -e "$WORK/$1.rc" ]]; }
died() {
  cat "$WORK/$1.log" >&2
  fail "$1: nonstopd exited with status $(cat "$WORK/$1.rc") while it should run"
}
has_msg() { grep -Eq "$1" "$msgs"; }
ready_or_dead() { has_msg '^[0-9.]+ READY=1$' || ! running notify; }
# stop TAG: SIGTERM, then the exit status must be 0 within 6 s; prints the
# seconds it took.
stop() {
  local t0 t1 rc
  t0=$(mono)
  kill -TERM "$(cat "$WORK/$1.pid")"
  wait_for 6 test -e "$WORK/$1.rc" ||
    { cat "$WORK/$1.log" >&2; fail "$1: nonstopd still running 6 s after SIGTERM"; }
  t1=$(mono)
  rc=$(cat "$WORK/$1.rc")
  [[ "$rc" == 0 ]] || { cat "$WORK/$1.log" >&2; fail "$1: nonstopd exited with status $rc after SIGTERM, want 0"; }
  grep -q "nonstopd stopped" "$WORK/$1.log" || fail "$1: no \"nonstopd stopped\" in the log"
  "$PY" -c "print('%.2f' % ($t1 - $t0))"
  echo "$t0" >"$WORK/$1.term"
}

# --- Under a (fake) systemd --------------------------------------------------
t_start=$(mono)
start_nonstopd notify NOTIFY_SOCKET="$sock" WATCHDOG_USEC=1000000
wait_for 15 ready_or_dead || fail "no READY=1 within 15 s"
running notify || died notify
t_ready=$(awk '$2 == "READY=1" { print $1; exit }' "$msgs")
echo "READY=1 after $("$PY" -c "print('%.2f' % ($t_ready - $t_start))") s"

# The channel goes on air within a few status periods of READY.
wait_for 10 has_msg '^[0-9.]+ STATUS=(.*; )?notifytest on-air \(' ||
  { cat "$msgs" >&2; fail "no STATUS= saying notifytest is on-air within 10 s of READY"; }
echo "status: $(grep -E 'STATUS=(.*; )?notifytest on-air' "$msgs" | head -1 | cut -d' ' -f2-)"

# Keepalives over the 3 s after READY (plus the one that closes the window).
watchdog_past() { awk -v t="$1" '$2 == "WATCHDOG=1" && $1 > t { f = 1 } END { exit !f }' "$msgs"; }
wait_for 6 watchdog_past "$("$PY" -c "print($t_ready + 3)")" || true
running notify || died notify
"$PY" - "$msgs" "$t_ready" <<'EOF' || fail "the watchdog keepalive is not regular (see above)"
import sys
msgs, ready = sys.argv[1], float(sys.argv[2])
ka = [float(l.split()[0]) for l in open(msgs) if l.split()[1:] == ["WATCHDOG=1"]]
ka = [t for t in ka if t >= ready]
window = [t for t in ka if t <= ready + 3]
# The gaps that cover the window: READY to the first keepalive, between
# keepalives, and across the window's end.
marks = [ready] + [t for t in ka if t <= ready + 3] + [t for t in ka if t > ready + 3][:1]
gaps = [b - a for a, b in zip(marks, marks[1:])]
if marks[-1] <= ready + 3:
    gaps.append(ready + 3 - marks[-1])
print("WATCHDOG=1: %d in the 3 s after READY, gaps %.3f .. %.3f s (period 0.5 s)"
      % (len(window), min(gaps[1:] or gaps), max(gaps)))
ok = len(window) >= 4 and max(gaps) <= 1.0
sys.exit(0 if ok else 1)
EOF

# --- SIGHUP reloads (ExecReload=kill -HUP), never kills -----------------------
# hup EXPECT_LOG: SIGHUP, then EXPECT_LOG (a regex) in the log after it and
# RELOADING=1 … READY=1 from the fake systemd; nonstopd still running.
hup() {
  local t0 n0
  t0=$(mono)
  n0=$(wc -l <"$WORK/notify.log")
  kill -HUP "$(cat "$WORK/notify.pid")"
  after_hup() { tail -n +"$((n0 + 1))" "$WORK/notify.log" | grep -Eq "$1"; }
  wait_for 15 after_hup "$1" || { tail -n 20 "$WORK/notify.log" >&2; fail "SIGHUP: no log line /$1/"; }
  ready_after() { awk -v t="$t0" '$2 == "RELOADING=1" && $1 >= t { r = 1 } r && $2 == "READY=1" { f = 1 } END { exit !f }' "$msgs"; }
  wait_for 10 ready_after || { cat "$msgs" >&2; fail "SIGHUP: no RELOADING=1 then READY=1"; }
  running notify || died notify
  tail -n +"$((n0 + 1))" "$WORK/notify.log"
}
hup_lines=$(hup 'config reloaded .*added=\[\] removed=\[\] rebuilt=\[\]')
grep -q "SIGHUP: reloading the config" <<<"$hup_lines" || fail "SIGHUP was not logged"
grep -q "reload: " <<<"$hup_lines" && fail "an unchanged config touched a channel: $hup_lines"
echo "SIGHUP, same config: reloaded, nothing touched, RELOADING=1 … READY=1"
cp "$cfg" "$WORK/good.toml"
sed 's/id = "notifytest"/id = "second"/; s/"udp:\/\/127.0.0.1:[0-9]*"/"udp:\/\/127.0.0.1:9"/' "$WORK/good.toml" >>"$cfg"
hup_lines=$(hup 'config reloaded .*added=\["second"\]')
grep -q 'rebuilt=\[\]' <<<"$hup_lines" || fail "a new channel was called rebuilt: $hup_lines"
grep -q 'channel=notifytest' <<<"$hup_lines" && fail "adding a channel touched notifytest: $hup_lines"
echo "SIGHUP, a channel added: started, the other untouched"
echo 'this is = = not toml' >>"$cfg"
hup_lines=$(hup 'reload refused, the running channels go on unchanged')
grep -q "reload: \|channel stopped" <<<"$hup_lines" && fail "a broken config touched a channel: $hup_lines"
has_msg '^[0-9.]+ STATUS=(.*; )?notifytest on-air' || fail "notifytest is not on air after the reloads"
echo "SIGHUP, a broken config: refused with the reason, every channel still running"
cp "$WORK/good.toml" "$cfg"

stop_s=$(stop notify)
t_term=$(cat "$WORK/notify.term")
t_stopping=$(awk -v t="$t_term" '$2 == "STOPPING=1" && $1 >= t { print $1; exit }' "$msgs")
[[ -n "$t_stopping" ]] || { cat "$msgs" >&2; fail "no STOPPING=1 after SIGTERM"; }
echo "SIGTERM: STOPPING=1 after $("$PY" -c "print('%.3f' % ($t_stopping - $t_term))") s, exit 0 after $stop_s s"
if grep -q "withholding the watchdog keepalive" "$WORK/notify.log"; then
  echo "note: nonstopd withheld a keepalive:"
  grep "withholding the watchdog keepalive" "$WORK/notify.log"
fi

# --- A hung channel loop: the keepalive is withheld, so systemd restarts ------
# NONSTOPD_TEST_HANG blocks notifytest's event loop 4 s after it starts (a
# deadlocked call); the rest of the process runs on. systemd kills a unit
# whose keepalive is WATCHDOG_USEC late: here, once no WATCHDOG=1 comes.
start_nonstopd hung NOTIFY_SOCKET="$sock" WATCHDOG_USEC=1000000 NONSTOPD_TEST_HANG=notifytest:4
hung_log() { grep -q "blocking this channel's event loop" "$WORK/hung.log" || ! running hung; }
wait_for 20 hung_log || { cat "$WORK/hung.log" >&2; fail "hung: the injected hang was not logged within 20 s"; }
running hung || died hung
t_hang=$(mono)
withheld() { grep -q 'channel event loop not turning; withholding the watchdog keepalive.*notifytest' "$WORK/hung.log"; }
wait_for 5 withheld || { tail -n 20 "$WORK/hung.log" >&2; fail "hung: no \"withholding the watchdog keepalive\" naming notifytest within 5 s of the hang"; }
t_withheld=$(mono)
# Three keepalive periods in which none may come (a window measured, not a
# wait for something to happen).
past() { "$PY" -c "import sys, time; sys.exit(time.monotonic() < $1)"; }
wait_for 10 past "$("$PY" -c "print($t_withheld + 3)")"
running hung || died hung
"$PY" - "$msgs" "$t_hang" "$t_withheld" <<'EOF' || fail "hung: the keepalive was not withheld (see above)"
import sys
msgs, hang, withheld = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ka = [float(l.split()[0]) for l in open(msgs) if l.split()[1:] == ["WATCHDOG=1"]]
before = [t for t in ka if hang - 3 <= t < hang]
after = [t for t in ka if t >= hang]
late = [t for t in ka if t > withheld]
print("hung loop: %d keepalives in the 3 s before the hang was seen, %d after it (the last %s), %d in the 3 s "
      "after the warning" % (len(before), len(after), "%.2f s after" % (max(after) - hang) if after else "—", len(late)))
# Before: the regular 0.5 s keepalive. After: at most those sent while the
# last heartbeat was younger than the period (1 s, plus a 0.5 s tick); none
# once the warning is out.
ok = len(before) >= 4 and all(t - hang <= 1.5 for t in after) and not late
sys.exit(0 if ok else 1)
EOF
kill -KILL "$(cat "$WORK/hung.pid")"
wait_for 5 test -e "$WORK/hung.rc" || fail "hung: still there after SIGKILL"
echo "hung channel loop: keepalive withheld, the warning names the channel"

# --- Not under systemd, and with a socket nobody listens on ------------------
for tag in plain dangling; do
  if [[ $tag == plain ]]; then
    start_nonstopd plain -u NOTIFY_SOCKET -u WATCHDOG_USEC -u WATCHDOG_PID
  else
    start_nonstopd dangling NOTIFY_SOCKET="$WORK/nobody.sock" WATCHDOG_USEC=1000000
  fi
  on_air_or_dead() { grep -q "channel on-air" "$WORK/$tag.log" || ! running "$tag"; }
  wait_for 15 on_air_or_dead || { cat "$WORK/$tag.log" >&2; fail "$tag: not on air within 15 s"; }
  running "$tag" || died "$tag"
  stop_s=$(stop "$tag")
  echo "$tag: on air, stopped with status 0 in $stop_s s"
done

echo "PASS systemd_notify (READY, keepalive every 0.5 s and withheld when a channel loop hangs, STATUS on-air, SIGHUP reloads, STOPPING + exit 0; runs without systemd)"
