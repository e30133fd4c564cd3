#!/usr/bin/env bash
# End to end: output destinations. Output "cdn" sends SRT to a primary
# receiver with a backup receiver behind it (failover_after = 2); output
# "dual" sends to two receivers at once (mode = "both"). Killing the
# primary receiver moves "cdn" to the backup after two failed tries; the
# data goes on there; with the primary receiver back, "cdn" returns to it
# after retry_primary; "dual" and the recording never stall.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor

a=$(free_port) b=$(free_port) c=$(free_port) d=$(free_port)
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "out"
video = { width = 320, height = 240, framerate = 25 }
backoff = { initial = "300ms", max = "2s" }

[[channel.input]]
id = "cam"
uri = "test://ball?label=CAM"

[channel.encoder]
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "cdn"
uri = "srt://127.0.0.1:$a?mode=caller"
backup = ["srt://127.0.0.1:$b?mode=caller"]
failover_after = 2
retry_primary = "8s"

[[channel.output]]
id = "dual"
uri = "srt://127.0.0.1:$c?mode=caller"
backup = ["srt://127.0.0.1:$d?mode=caller"]
mode = "both"

[[channel.output]]
id = "rec"
uri = "file://$WORK/rec.ts"
TOML
receiver() { spawn "$1" gst-launch-1.0 -q srtsrc "uri=srt://127.0.0.1:$2?mode=listener" ! filesink "location=$3"; }
receiver rx_a "$a" "$WORK/a.ts"
receiver rx_b "$b" "$WORK/b.ts"
receiver rx_c "$c" "$WORK/c.ts"
receiver rx_d "$d" "$WORK/d.ts"
log="$WORK/log"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" 2>"$log"
wait_log "$log" "output started.*output=cdn" 10 >/dev/null
wait_log "$log" "output started.*output=dual.backup1" 10 >/dev/null
sleep 3

echo "-- the primary receiver of cdn goes away"
killed=$(now)
kill_group "$rx_a"
line=$(wait_log "$log" "moving to the next destination.*output=cdn" 15)
moving=$line
# SRT notices a dead peer after its 5 s idle timeout; the retry on the
# primary then fails after SRT's 3 s connect timeout.
within 0 "$("$PY" -c "print(round($(log_time "$line") - $killed, 2))")" 15 "killed → moved to the backup destination (s)"
n=$(grep -cE "output failed; restarting.*output=cdn" "$log")
((n == 1)) || fail "expected one retry on the primary before moving, saw $n failures"
wait_log "$log" "output started.*output=cdn.*destination=1" 10 >/dev/null
size_then=$(stat -c %s "$WORK/b.ts")
sleep 4
size_now=$(stat -c %s "$WORK/b.ts")
((size_now > size_then + 50000)) || fail "the backup receiver got $((size_now - size_then)) bytes in 4 s"
echo "   backup receiver: $((size_now - size_then)) bytes in 4 s after the move"

echo "-- the primary receiver comes back: cdn returns to it after retry_primary"
receiver rx_a2 "$a" "$WORK/a2.ts"
line=$(wait_log "$log" "trying the primary destination again.*output=cdn" 15)
within 7.95 "$("$PY" -c "print(round($(log_time "$line") - $(log_time "$moving"), 2))")" 9.5 \
  "on the backup → trying the primary (s; retry_primary 8 s)"
wait_log "$log" "output started.*output=cdn.*destination=0" 10 "${line%%:*}" >/dev/null
deadline=$(($(date +%s) + 10))
until (($(stat -c %s "$WORK/a2.ts" 2>/dev/null || echo 0) > 50000)); do
  (($(date +%s) < deadline)) || fail "the primary receiver got nothing after the return"
  sleep 0.1
done
echo "   primary receiver: $(stat -c %s "$WORK/a2.ts") bytes after the return"
kill -INT "$daemon"
wait_exit "$daemon" || fail "nonstopd exited with $?"

grep -E "output failed.*output=(dual|rec)" "$log" && fail "another output was disturbed"
for f in c d; do
  frames=$(ffprobe -v error -count_frames -select_streams v -show_entries stream=nb_read_frames -of csv=p=0 "$WORK/$f.ts" | awk 'NR == 1')
  ((frames > 150)) || fail "dual receiver $f got $frames frames"
  echo "   dual receiver $f: $frames frames"
done
decodes_clean "$WORK/b.ts" 1
decodes_clean "$WORK/a2.ts" 1
expect_continuous "$WORK/rec.ts" v 0.040 250
decodes_clean "$WORK/rec.ts"
echo "PASS nonstopd_output_failover"
