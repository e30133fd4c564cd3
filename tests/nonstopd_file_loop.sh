#!/usr/bin/env bash
# End to end: a file input with loop=true plays as live, paced by the clock,
# and loops seamlessly: no restart, no failover, a continuous output. Also
# the segmented recording and a two-rendition HLS ladder: whole segments,
# a master playlist, variant playlists that SIGINT ends properly.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor

# A 2 s clip (H.264 + AAC in MPEG-TS).
gst-launch-1.0 -q videotestsrc num-buffers=50 pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 \
  ! x264enc ! h264parse ! mux. audiotestsrc num-buffers=94 ! audioconvert ! avenc_aac ! mux. \
  mpegtsmux name=mux ! filesink location="$WORK/clip.ts"
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "loop"
video = { width = 320, height = 240, framerate = 25 }

[[channel.input]]
id = "clip"
uri = "file://$WORK/clip.ts?loop=true"

[[channel.input]]
id = "slate"
uri = "slate://colour/black"

[[channel.encoder]]
id = "hd"
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.encoder]]
id = "sd"
width = 160
height = 120
video_bitrate = 300
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "rec"
uri = "file://$WORK/out.ts"

[[channel.output]]
id = "segments"
uri = "file://$WORK/seg/part.mkv?segment=2s"

[[channel.output]]
id = "hls"
uri = "hls://$WORK/hls?segment=1s&playlist=3"
TOML
log="$WORK/nonstopd.log"
started=$(now)
RUST_LOG=info,nonstop_supervisor=debug spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" 2>"$log"
wait_log "$log" "switched none → clip" 10 >/dev/null
line=$(wait_log "$log" "looping.*input=clip" 10)
for _ in 1 2; do line=$(wait_log "$log" "looping.*input=clip" 10 "${line%%:*}"); done
# Three loops of a 2 s clip take 6 s of real time: the file is paced.
within 5.5 "$("$PY" -c "print(round($(log_time "$line") - $started, 2))")" 9 "three loops done after (s)"
kill -INT "$daemon"
wait_exit "$daemon" || fail "nonstopd exited with $?"
grep -E "restarting|switched clip" "$log" && fail "the looping input was restarted or left the air"
expect_continuous "$WORK/out.ts" v 0.040 140
decodes_clean "$WORK/out.ts"
parts=("$WORK"/seg/part-*.mkv)
((${#parts[@]} >= 3)) || fail "expected >= 3 recording segments, got ${#parts[@]}"
for p in "${parts[@]}"; do decodes_clean "$p"; done
[[ -e "$WORK/seg/part-00000.mkv" ]] || fail "segments do not start at part-00000.mkv"
master="$WORK/hls/master.m3u8"
grep -q "RESOLUTION=320x240" "$master" && grep -q "RESOLUTION=160x120" "$master" ||
  fail "master playlist lacks a rendition: $(cat "$master")"
for r in hd sd; do
  playlist="$WORK/hls/$r/index.m3u8"
  grep -q "^$r/index.m3u8$" "$master" || fail "master playlist does not list $r"
  grep -q "#EXT-X-ENDLIST" "$playlist" || fail "the $r playlist was not ended at stop"
  listed=$(grep -c "\.ts$" "$playlist")
  ((listed == 3)) || fail "the $r playlist lists $listed segments, want 3"
  for seg in $(grep "\.ts$" "$playlist"); do decodes_clean "$WORK/hls/$r/$seg"; done
  width=$(ffprobe -v error -select_streams v -show_entries stream=width -of csv=p=0 "$WORK/hls/$r/$seg" | awk 'NR == 1')
  echo "   $r: $listed segments, $width pixels wide"
done
echo "PASS nonstopd_file_loop"
