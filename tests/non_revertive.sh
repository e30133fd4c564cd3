#!/usr/bin/env bash
# Non-revertive failover from the config (`auto_return = false`, issue 16):
# the primary's sender dies, the channel fails over to the backup; the
# sender comes back and its input is receiving and clean, yet after
# return_after and more the channel is still on the backup; an operator's
# switch puts the primary back. With auto_return = true the same channel
# returns within return_after (tests/nonstopd_failover.sh).
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor
CTL="$ROOT/target/release/nonstopctl"
PY=/usr/bin/python3
CH=nr
port=$(free_port)
return_after=1

private_bus
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "$CH"
video = { width = 320, height = 180, framerate = 25 }
timeout = "500ms"
return_after = "${return_after}s"
auto_return = false
backoff = { initial = "300ms", max = "1s" }

[[channel.input]]
id = "primary"
uri = "udp://127.0.0.1:$port"

[[channel.input]]
id = "backup"
uri = "test://smpte"

[channel.encoder]
preset = "ultrafast"
keyframe_interval = "1s"
TOML
"$ROOT/target/release/nonstopd" check "$WORK/ch.toml" | grep -q "non-revertive" || fail "check does not say non-revertive"
log="$WORK/nonstopd.log"
start_primary() { spawn primary "$TS_SENDER" ball 320x180 udpsink host=127.0.0.1 port="$port"; }
start_primary
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --address "$addr" --metrics "" 2>"$log"

status() { "$CTL" --address "$addr" status "$CH" --json >"$WORK/out" 2>"$WORK/err" || fail "status: $(cat "$WORK/err")"; }
# json EXPR: the Python EXPR over c (the channel's status) holds.
json() { status && "$PY" -c 'import json, sys; c = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$WORK/out" "$1"; }

echo "-- the primary on air"
line=$(wait_log "$log" "switched .* → primary" 30)
at=${line%%:*}

echo "-- the primary's sender dies: failover"
kill_group "$primary"
line=$(wait_log "$log" "switched primary → backup" 10 "$at")
at=${line%%:*}

echo "-- it comes back: receiving, clean, and not returned to"
start_primary
# Receiving again: its last buffer is fresh (the status holds µs since the epoch).
fresh='(lambda i: i["state"] == "receiving" and not i["alarms"] and __import__("time").time() * 1e6 - i["last_seen"] < 500000)(next(i for i in c["Inputs"] if i["id"] == "primary"))'
deadline=$(($(date +%s) + 20))
until json "$fresh"; do
  (($(date +%s) < deadline)) || fail "the primary is not receiving again: $(cat "$WORK/out")"
  sleep 0.1
done
# Revertive, it would return once return_after of clean signal had passed;
# wait that, twice over, plus a second.
sleep $((2 * return_after + 1))
json 'c["ActiveInput"] == "backup"' || fail "the channel returned by itself: $(cat "$WORK/out")"
json "$fresh" ||
  fail "the primary is not clean, so the test proves nothing: $(cat "$WORK/out")"
if tail -n +"$((at + 1))" "$log" | grep -q "switched backup → primary"; then fail "switched back by itself"; fi
echo "   still on the backup $((2 * return_after + 1)) s after the primary came back clean"

echo "-- the operator switches back"
"$CTL" --address "$addr" switch "$CH" primary >/dev/null 2>"$WORK/err" || fail "switch: $(cat "$WORK/err")"
wait_log "$log" "switched backup → primary" 10 "$at" >/dev/null
json 'c["ActiveInput"] == "primary"' || fail "not on the primary after the switch: $(cat "$WORK/out")"
kill -TERM "$daemon"
wait_exit "$daemon" 15 || fail "nonstopd did not stop cleanly"
echo "PASS non_revertive"
