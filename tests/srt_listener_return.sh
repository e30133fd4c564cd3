#!/usr/bin/env bash
# End to end (issue 18 #1): a caller that comes back to an SRT listener
# input is back on air after return_after (+ at most 1 s), whatever the
# gap: killed with -9 and restarted after 0.5, 2, 6 and 10 s, with two
# senders nobody here wrote, ffmpeg (libsrt) and srt-live-transmit. The
# listener keeps listening: never "already listening", never a backoff.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor
for tool in ffmpeg srt-live-transmit; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
done
ffmpeg -hide_banner -protocols 2>/dev/null | grep -qx " *srt" || fail "this ffmpeg has no libsrt"

port=$(free_port)
return_after=2
secret=topsecret12
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "srtin"
video = { width = 320, height = 180, framerate = 25 }
timeout = "500ms"
return_after = "${return_after}s"
# Cycles are seconds apart: each return is judged against return_after,
# not against a hold-off the flap damping doubled.
flap_window = "1s"
backoff = { initial = "2s", max = "30s" }

[[channel.input]]
id = "primary"
uri = "srt://127.0.0.1:$port?mode=listener&latency=200&passphrase=$secret&streamid=studio1"

[[channel.input]]
id = "backup"
uri = "test://smpte"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 300
keyframe_interval = "1s"

[[channel.output]]
id = "rec"
uri = "file://$WORK/rec.ts"
TOML
log="$WORK/nonstopd.log"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" 2>"$log"

# The senders. ffmpeg is the caller itself (the issue's command);
# srt-live-transmit relays a live TS from UDP, whose feed keeps running
# while the relay is killed (GOP 0.24 s: a relay joins mid-GOP, and the
# wait for a keyframe is the feed's, not the listener's).
udp_port=$(free_port)
ffmpeg_ts() { # VAR GOP DESTINATION: spawns an ffmpeg live TS sender
  spawn "$1" ffmpeg -nostdin -hide_banner -loglevel error -re \
    -f lavfi -i testsrc2=size=320x180:rate=25 -f lavfi -i sine \
    -c:v libx264 -preset ultrafast -g "$2" -c:a aac -f mpegts "$3"
}
ffmpeg_ts feed 6 "udp://127.0.0.1:$udp_port?pkt_size=1316"
send_ffmpeg() {
  ffmpeg_ts tx 25 "srt://127.0.0.1:$port?mode=caller&latency=200000&pkt_size=1316&passphrase=$secret&streamid=${1:-studio1}"
}
send_slt() {
  spawn tx srt-live-transmit -q "udp://127.0.0.1:$udp_port" \
    "srt://127.0.0.1:$port?mode=caller&latency=200&passphrase=$secret&streamid=studio1"
}

echo "-- a caller with another stream id is turned away"
send_ffmpeg studio2
wait_log "$log" "srt caller refused.*its stream id is not the one" 15 >/dev/null
kill_group "$tx"

from=0
for sender in ffmpeg slt; do
  "send_$sender"
  line=$(wait_log "$log" "switched .* → primary" 30 "$from")
  from=${line%%:*}
  echo "-- $sender on air"
  for gap in 0.5 2 6 10; do
    kill_group "$tx"
    line=$(wait_log "$log" "switched primary → backup" 5 "$from")
    from=${line%%:*}
    sleep "$gap"
    start=$(now)
    "send_$sender"
    conn=$(wait_log "$log" "srt caller connected" $((return_after + 10)) "$from")
    line=$(wait_log "$log" "switched backup → primary" $((return_after + 10)) "$from")
    from=${line%%:*}
    # From the sender's restart (what the operator sees), and from the
    # listener's accept (the daemon's own clock: no process start-up in it).
    back=$("$PY" -c "print('%.2f' % ($(log_time "$line") - $start))")
    accepted=$("$PY" -c "print('%.2f' % ($(log_time "$line") - $(log_time "$conn")))")
    within "$return_after" "$back" "$((return_after + 1))" "$sender back after a ${gap} s gap (s from its restart to on air)"
    within "$return_after" "$accepted" "$((return_after + 1))" "   the same from the listener's accept (s)" >/dev/null
    kill -0 "$tx" 2>/dev/null || fail "$sender exited after it came back (the listener dropped it)"
    sleep 0.5
  done
  kill_group "$tx"
  wait_log "$log" "switched primary → backup" 5 "$from" >/dev/null
done
echo "-- a reload that rebuilds the channel keeps the caller connected"
send_ffmpeg
line=$(wait_log "$log" "switched .* → primary" 15 "$from")
from=${line%%:*}
sed -i 's/^return_after = .*/return_after = "2100ms"/' "$WORK/ch.toml"
kill -HUP "$daemon"
line=$(wait_log "$log" 'config reloaded .*rebuilt=\["srtin"\]' 15 "$from")
from=${line%%:*}
wait_log "$log" "switched none → primary" 10 "$from" >/dev/null
tail -n +"$from" "$log" | grep -E "srt caller connected|srt listener open" &&
  fail "the reload dropped the caller or reopened the socket"
kill -0 "$tx" 2>/dev/null || fail "ffmpeg exited across the reload"
echo "   the same caller is on air again after the reload, on the same socket"
kill_group "$tx"

kill -INT "$daemon"
wait_exit "$daemon" || fail "nonstopd exited with $?"

echo "-- the listener kept listening"
grep -E "already listening|Cannot listen|cannot bind" "$log" && fail "the listener's port was lost"
grep -E "restarting.*input=primary" "$log" && fail "the listening input waited out a backoff"
n=$(grep -c "srt caller connected" "$log" || true)
((n >= 11)) || fail "only $n callers were seen connecting (want 11)"
opened=$(grep -c "srt listener open" "$log" || true)
((opened == 1)) || fail "the listener's socket was opened $opened times, want once"
echo "   $n callers connected, one socket all along, no backoff"
decodes_clean "$WORK/rec.ts" 1
echo "PASS srt_listener_return"
