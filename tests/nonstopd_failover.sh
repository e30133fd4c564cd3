#!/usr/bin/env bash
# End to end: nonstopd with a primary fed over SRT and a backup over UDP by
# real sender processes on 127.0.0.1. Killing the primary's sender switches
# the channel within timeout + one frame; restarting it brings the channel
# back after return_after. The recordings (MPEG-TS and MP4, finalized by
# SIGTERM) have continuous timestamps across both switches and decode
# without errors.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor

srt_port=$(free_port)
udp_port=$(free_port)
timeout_ms=500
frame_ms=40
return_after=3
secret=e2e-passphrase-4711 # SRT encryption; must never be shown
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "e2e"
video = { width = 640, height = 360, framerate = 25 }
timeout = "${timeout_ms}ms"
return_after = "${return_after}s"
backoff = { initial = "300ms", max = "2s" }

[[channel.input]]
id = "primary"
uri = "srt://127.0.0.1:$srt_port?mode=caller&passphrase=$secret"

[[channel.input]]
id = "backup"
uri = "udp://127.0.0.1:$udp_port"

[[channel.input]]
id = "slate"
uri = "slate://colour/black?text=slate"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 800
keyframe_interval = "1s"

[[channel.output]]
id = "ts"
uri = "file://$WORK/out.ts"

[[channel.output]]
id = "mp4"
uri = "file://$WORK/out.mp4"
TOML
log="$WORK/nonstopd.log"

# The primary's encoder is an SRT listener (nonstopd calls it); the backup
# sends UDP.
start_primary() { spawn primary "$TS_SENDER" ball 640x360 srtsink "uri=srt://127.0.0.1:$srt_port?mode=listener&passphrase=$secret" wait-for-connection=false; }
start_primary
spawn backup "$TS_SENDER" smpte 640x360 udpsink host=127.0.0.1 port="$udp_port"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" 2>"$log"

echo "-- waiting for the primary on air"
line=$(wait_log "$log" "switched .* → primary" 20)
at=${line%%:*}
wait_log "$log" "input receiving .*input=backup" 10 >/dev/null
sleep 3 # steady state on the primary, recorded

echo "-- killing the primary's sender"
killed=$(now)
kill_group "$primary"
line=$(wait_log "$log" "switched primary → backup" 10 "$at")
at=${line%%:*}
stalled=$(field "$line" stalled_ms)
within 0 "$stalled" $((timeout_ms + frame_ms + 5)) "stall before the switch (ms)"
# Measured outside the daemon (the kill, on this script's clock): 618–620 ms
# here, 463–682 ms for the same fault in the chaos runs with both cores
# busy. The bound leaves 280 ms for a loaded machine; a switch found by any
# slower path than the stall timer would miss it.
within 0 "$("$PY" -c "print(round(($(log_time "$line") - $killed) * 1000))")" $((timeout_ms + frame_ms + 360)) \
  "sender killed → switched (ms; includes SRT latency and decode)"
wait_log "$log" "input lost; restarting.*input=primary" 5 "$at" >/dev/null

sleep 2
echo "-- restarting the primary's sender"
start_primary
restored=$(wait_log "$log" "input restored.*input=primary" 15 "$at")
line=$(wait_log "$log" "switched backup → primary.*reason=recovered" $((return_after + 5)) "$at")
# return_after counts from the restore, or from the end of the last hole
# in the restored source (a starved sender makes them; nonstopd says so).
clean=$restored
back_at=${line%%:*}
while IFS= read -r l; do
  n=${l%%:*}
  ((n > ${restored%%:*} && n < back_at)) && clean=$l
done < <(grep -n "input interrupted.*input=primary" "$log" || true)
[[ $clean == "$restored" ]] || echo "   the restored primary was interrupted: ${clean#*Z }"
within $((return_after * 1000 - 250)) \
  "$("$PY" -c "print(round(($(log_time "$line") - $(log_time "$clean")) * 1000))")" \
  $((return_after * 1000 + 600)) "input restored (or last interrupted) → back on air (ms; return_after ${return_after}s)"
sleep 2

echo "-- SIGTERM"
stop=$(now)
kill -TERM "$daemon"
rc=0
wait_exit "$daemon" || rc=$?
((rc == 0)) || fail "nonstopd exited with $rc"
within 0 "$("$PY" -c "print(round($(now) - $stop, 2))")" 5 "stop time (s)"
grep -q "output did not finish" "$log" && fail "an output did not finish"
grep -E "ERROR" "$log" | grep -v "input=primary\|id=primary" && fail "unexpected errors in the log"

grep -q "$secret" "$log" && fail "the SRT passphrase appears in the log"
grep -q "passphrase=\*\*\*" "$log" || fail "the redacted input URI is not in the log"

echo "-- recordings"
expect_continuous "$WORK/out.ts" v 0.040 250
expect_continuous "$WORK/out.ts" a 0.021333 400
decodes_clean "$WORK/out.ts"
expect_continuous "$WORK/out.mp4" v 0.040 250
decodes_clean "$WORK/out.mp4"
dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$WORK/out.mp4")
within 8 "$dur" 60 "MP4 duration read whole (s)"
echo "PASS nonstopd_failover"
