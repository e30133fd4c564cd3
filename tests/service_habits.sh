#!/usr/bin/env bash
# nonstopd as a service an operator runs (issue 16): the config layout
# (drop-ins in conf.d/, check with their names), nonstopctl finding the
# daemon on the system bus with no bus named, the log level changed while it
# runs (org.freedesktop.LogControl1, as `systemctl service-log-level` sets
# it), --log-format json, native journald records, and SIGHUP reloading a
# new drop-in or refusing a broken one with every channel left running.
# A private bus stands in for the system bus (DBUS_SYSTEM_BUS_ADDRESS), a
# unix datagram socket for journald (NONSTOP_JOURNAL_SOCKET).
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor
CTL="$ROOT/target/release/nonstopctl"
PY=/usr/bin/python3

channel() { # channel ID: a small test channel
  cat <<TOML
[[channel]]
id = "$1"
video = { width = 160, height = 120, framerate = 25 }

[[channel.input]]
id = "pattern"
uri = "test://ball"

[channel.encoder]
backend = "x264"
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$(free_port)"
TOML
}

ETC="$WORK/etc/nonstop"
mkdir -p "$ETC/conf.d"
channel news >"$ETC/nonstopd.toml"
channel sport >"$ETC/conf.d/10-sport.toml"
echo "# not a drop-in" >"$ETC/conf.d/README"

echo "-- nonstopd check: the file and its drop-ins"
"$NONSTOPD" check "$ETC/nonstopd.toml" >"$WORK/check" 2>&1 || { cat "$WORK/check"; fail "check failed"; }
grep -q "valid, 2 channel(s)" "$WORK/check" || fail "check: $(cat "$WORK/check")"
grep -q "with $ETC/conf.d/10-sport.toml" "$WORK/check" || fail "check does not name the drop-in: $(cat "$WORK/check")"
grep -q "^channel sport:" "$WORK/check" || fail "check does not show the drop-in's channel"
cp "$ETC/conf.d/10-sport.toml" "$WORK/bad.toml"
sed -i 's|uri = "test://ball"|uri = "bogus://x"|' "$WORK/bad.toml"
mkdir -p "$WORK/etc2/conf.d" && cp "$ETC/nonstopd.toml" "$WORK/etc2/" && cp "$WORK/bad.toml" "$WORK/etc2/conf.d/20-bad.toml"
if "$NONSTOPD" check "$WORK/etc2/nonstopd.toml" >"$WORK/check2" 2>&1; then fail "check passed a broken drop-in"; fi
grep -qE "^$WORK/etc2/conf.d/20-bad.toml:[0-9]+:[0-9]+: channel\[1\]\.input\[0\]\.uri: " "$WORK/check2" ||
  fail "the error does not name the drop-in that holds the key: $(cat "$WORK/check2")"
echo "   2 channels from the file and conf.d/10-sport.toml; a broken drop-in named with its line"

private_bus
export DBUS_SYSTEM_BUS_ADDRESS=$addr
sysbus=$addr
log="$WORK/nonstopd.log"
RUST_LOG=info spawn daemon env -u JOURNAL_STREAM "$NONSTOPD" --config "$ETC/nonstopd.toml" --system \
  --metrics "" --log-format json 2>"$log"
wait_log "$log" '"message":"D-Bus control published"' 30 >/dev/null

echo "-- --log-format json: one object per line"
"$PY" - "$log" <<'PY' || fail "the log is not one JSON object per line"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
objs = [json.loads(l) for l in lines]
started = [o for o in objs if o.get("message") == "channel started"]
assert {o.get("channel") for o in started} == {"news", "sport"}, started
assert all(o.get("event") == "channel-started" and o.get("level") == "INFO" for o in started), started
print(f"   {len(objs)} lines, each a JSON object; 'channel started' with channel and event fields")
PY

echo "-- nonstopctl with no bus named finds nonstopd on the system bus"
ctl_rc=0
env -u DBUS_SESSION_BUS_ADDRESS "$CTL" status >"$WORK/out" 2>"$WORK/err" || ctl_rc=$?
((ctl_rc == 0)) || fail "nonstopctl status: exit $ctl_rc: $(cat "$WORK/err")"
grep -q news "$WORK/out" && grep -q sport "$WORK/out" || fail "status: $(cat "$WORK/out")"
# The session bus alone: another private bus, without nonstopd.
private_bus
ctl_rc=0
DBUS_SESSION_BUS_ADDRESS=$addr "$CTL" --session status >"$WORK/out" 2>"$WORK/err" || ctl_rc=$?
((ctl_rc == 3)) && grep -q "nonstopd is not running" "$WORK/err" ||
  fail "--session without nonstopd there: exit $ctl_rc, $(cat "$WORK/err")"
echo "   found on the system bus; --session looks only there (exit 3)"

echo "-- org.freedesktop.LogControl1: the level while it runs"
lc() { busctl --address="$sysbus" "$1" org.nonstop.Supervisor1 /org/freedesktop/LogControl1 org.freedesktop.LogControl1 "${@:2}"; }
[[ $(lc get-property LogLevel) == 's "info"' ]] || fail "LogLevel: $(lc get-property LogLevel)"
[[ $(lc get-property SyslogIdentifier) == 's "nonstopd"' ]] || fail "SyslogIdentifier"
[[ $(lc get-property LogTarget) == 's "console"' ]] || fail "LogTarget: $(lc get-property LogTarget)"
before=$(grep -c '"level":"DEBUG"' "$log" || true)
((before == 0)) || fail "debug lines at level info"
busctl --address="$sysbus" set-property org.nonstop.Supervisor1 /org/freedesktop/LogControl1 \
  org.freedesktop.LogControl1 LogLevel s debug
[[ $(lc get-property LogLevel) == 's "debug"' ]] || fail "LogLevel after set: $(lc get-property LogLevel)"
# GStreamer's debug messages come too, in the same JSON form.
wait_log "$log" '"level":"DEBUG".*"gst_category"' 10 >/dev/null
busctl --address="$sysbus" set-property org.nonstop.Supervisor1 /org/freedesktop/LogControl1 \
  org.freedesktop.LogControl1 LogLevel s info
[[ $(lc get-property LogLevel) == 's "info"' ]] || fail "LogLevel back: $(lc get-property LogLevel)"
if busctl --address="$sysbus" set-property org.nonstop.Supervisor1 /org/freedesktop/LogControl1 \
  org.freedesktop.LogControl1 LogLevel s verbose 2>"$WORK/err"; then fail "LogLevel verbose accepted"; fi
grep -q "unknown log level" "$WORK/err" || fail "a bad level's error: $(cat "$WORK/err")"
"$PY" - "$log" <<'PY' || fail "the log is not JSON after the level changes"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
gst = [o for o in objs if "gst_category" in o]
assert gst, "no GStreamer message"
print(f"   info → debug ({len(gst)} GStreamer messages, as JSON) → info; a bad level is refused")
PY

echo "-- SIGHUP: a new drop-in is loaded, a broken one refused"
channel weather >"$ETC/conf.d/20-weather.toml"
kill -HUP "$daemon"
wait_log "$log" '"message":"channel started".*"channel":"weather"' 30 >/dev/null
"$CTL" status weather >/dev/null 2>"$WORK/err" || fail "status weather: $(cat "$WORK/err")"
n=$(wc -l <"$log")
cp "$WORK/bad.toml" "$ETC/conf.d/30-bad.toml"
kill -HUP "$daemon"
wait_log "$log" "30-bad.toml:[0-9]+:[0-9]+: channel\[3\]\.input\[0\]\.uri" 15 "$n" >/dev/null
kill -0 "$daemon" || fail "nonstopd died on a broken drop-in"
"$CTL" status >"$WORK/out" 2>"$WORK/err" || fail "status after the refused reload: $(cat "$WORK/err")"
for c in news sport weather; do grep -q "$c" "$WORK/out" || fail "channel $c gone after a refused reload"; done
if tail -n +"$((n + 1))" "$log" | grep -q '"message":"channel stopped"'; then fail "a channel stopped at the refused reload"; fi
echo "   20-weather.toml added a channel; 30-bad.toml was refused by name and line, nothing stopped"
kill -TERM "$daemon"
wait_exit "$daemon" 15 || fail "nonstopd did not stop cleanly"

echo "-- journald: native records when JOURNAL_STREAM is set"
sock="$WORK/journal.sock"
"$PY" - "$sock" "$WORK/journal" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        d = s.recv(1 << 20)
        f.write(len(d).to_bytes(4, "little") + d)
PY
PIDS+=($!)
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
rm -f "$ETC/conf.d/30-bad.toml"
RUST_LOG=info NONSTOP_JOURNAL_SOCKET="$sock" JOURNAL_STREAM=8:1 spawn daemon "$NONSTOPD" \
  --config "$ETC/nonstopd.toml" --no-dbus --metrics "" 2>"$WORK/stderr"
"$PY" - "$WORK/journal" <<'PY' || { cat "$WORK/stderr" >&2; fail "no native journal record of the channels starting"; }
import os, sys, time

def records(path):
    data = open(path, "rb").read() if os.path.exists(path) else b""
    i = 0
    while i + 4 <= len(data):
        n = int.from_bytes(data[i:i + 4], "little")
        d, i = data[i + 4:i + 4 + n], i + 4 + n
        fields, j = {}, 0
        while j < len(d):
            nl = d.index(b"\n", j)
            line = d[j:nl]
            if b"=" in line:
                k, v = line.split(b"=", 1)
                fields[k.decode()] = v.decode()
                j = nl + 1
            else:
                size = int.from_bytes(d[nl + 1:nl + 9], "little")
                fields[line.decode()] = d[nl + 9:nl + 9 + size].decode()
                j = nl + 10 + size
        yield fields

deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    started = [r for r in records(sys.argv[1]) if r.get("NONSTOP_EVENT") == "channel-started"]
    if {r.get("CHANNEL") for r in started} >= {"news", "sport", "weather"}:
        break
    time.sleep(0.1)
else:
    sys.exit("channel-started records: %s" % started)
r = started[0]
assert r["PRIORITY"] == "6" and r["SYSLOG_IDENTIFIER"] == "nonstopd", r
assert r["MESSAGE"].startswith("channel started "), r
print(f"   {len(list(records(sys.argv[1])))} records; channel started: PRIORITY=6 CHANNEL={r['CHANNEL']} NONSTOP_EVENT=channel-started")
PY
if grep -q "channel started" "$WORK/stderr"; then fail "the records also went to stderr as text"; fi
kill -TERM "$daemon"
wait_exit "$daemon" 15 || fail "nonstopd did not stop cleanly"
echo "PASS service_habits"
