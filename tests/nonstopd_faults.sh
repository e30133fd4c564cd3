#!/usr/bin/env bash
# End to end: nonstopd keeps its output continuous while its inputs
# misbehave — one sends garbage, one changes resolution every 2 s, one never
# connects — and while one output's destination goes away and comes back.
# The other output (a recording) never stalls; the restarted output begins
# on a keyframe; the log says clearly what happened to whom.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor

garbage_port=$(free_port)
resize_port=$(free_port)
never_port=$(free_port)
out_port=$(free_port)
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "faults"
video = { width = 640, height = 360, framerate = 25 }
timeout = "500ms"
return_after = "2s"
backoff = { initial = "300ms", max = "2s" }

[[channel.input]]
id = "garbage"
uri = "udp://127.0.0.1:$garbage_port"

[[channel.input]]
id = "resize"
uri = "udp://127.0.0.1:$resize_port"

[[channel.input]]
id = "never"
uri = "srt://127.0.0.1:$never_port?mode=caller"

[[channel.input]]
id = "slate"
uri = "slate://colour/blue"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 800
keyframe_interval = "1s"

[[channel.output]]
id = "rec"
uri = "file://$WORK/rec.ts"

[[channel.output]]
id = "contribution"
uri = "srt://127.0.0.1:$out_port?mode=caller"
TOML
log="$WORK/nonstopd.log"
receiver() { spawn rx gst-launch-1.0 -q srtsrc "uri=srt://127.0.0.1:$out_port?mode=listener" ! filesink "location=$1"; }

spawn garbage "$ROOT/tests/tools/garbage-sender" "$garbage_port"
spawn resize "$ROOT/tests/tools/resize-sender" "$resize_port" 2 >"$WORK/resize.log"
receiver "$WORK/rx1.ts"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" 2>"$log"

echo "-- inputs misbehave"
line=$(wait_log "$log" "switched .* → resize" 20)
at=${line%%:*}
wait_log "$log" "output started.*output=contribution" 5 >/dev/null
sleep 5 # two resolution changes on air, garbage and never retrying

echo "-- the contribution receiver goes away"
kill_group "$rx"
line=$(wait_log "$log" "output failed; restarting.*output=contribution" 10 "$at")
echo "   $(sed -E 's/^[0-9]+://' <<<"$line" | cut -c1-200)"
at=${line%%:*}
sleep 3
echo "-- and comes back"
receiver "$WORK/rx2.ts"
line=$(wait_log "$log" "output started.*output=contribution.*restarts=[1-9]" 15 "$at")
back=${line%%:*}
sleep 4
kill -INT "$daemon"
wait_exit "$daemon" || fail "nonstopd exited with $?"
kill_group "$rx"

echo "-- the log says what happened"
# The normalizer absorbs the changes: no error, no restart. (A change may
# still cost the decoder a few frames; on a loaded machine that can exceed
# the timeout and fail over for a moment, which is the switch's job.)
grep -E "ERROR.*id=resize" "$log" && fail "a resolution change made the resize input fail"
grep -E "input lost.*input=resize" "$log" && fail "the resize input was restarted"
grep -E "switched .* → (garbage|never)" "$log" && fail "a broken input went on air"
n=$(grep -cE "(restarting|ERROR).*input=garbage|(restarting|ERROR).*id=garbage" "$log" || true)
((n >= 2)) || fail "the garbage input was not reported and restarted ($n lines)"
echo "   garbage: $n lines, e.g. $(grep -E "id=garbage|input=garbage" "$log" | grep -v "alarm" | head -n 1 | cut -c 29-220)"
retries=$(grep -E "restarting.*input=never" "$log" | sed -E 's/.*retry_in=//' | head -n 4 | tr '\n' ' ')
[[ $(wc -w <<<"$retries") -ge 2 ]] || fail "the input that never connects was not retried"
echo "   never: retried, waits $retries"
sizes=$(grep -c "resize-sender:" "$WORK/resize.log")
((sizes >= 6)) || fail "the resize sender changed size only $sizes times"
echo "   resize: on air through $((sizes - 1)) resolution changes"

echo "-- outputs"
width=$(ffprobe -v error -select_streams v -show_entries stream=width,height -of csv=p=0 "$WORK/rec.ts" | awk 'NR == 1')
[[ $width == 640,360 ]] || fail "recording is $width, want 640,360"
expect_continuous "$WORK/rec.ts" v 0.040 300
expect_continuous "$WORK/rec.ts" a 0.021333 500
decodes_clean "$WORK/rec.ts"
frames=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$WORK/rx2.ts" | awk 'NR == 1')
((frames >= 50)) || fail "the restarted output delivered $frames frames"
echo "   rx2.ts (after the destination came back): $frames frames"
# The receiver is killed mid-write: its last packets may be cut.
decodes_clean "$WORK/rx2.ts" 1
echo "PASS nonstopd_faults"
