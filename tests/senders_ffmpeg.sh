#!/usr/bin/env bash
# End to end (issue 16, senders): the ffmpeg recipes of docs/senders.md,
# run exactly as written there, against a real nonstopd: SRT with ffmpeg
# calling nonstopd's listener input, SRT with nonstopd calling ffmpeg's
# listener, UDP unicast and UDP multicast. Each recipe's `[[channel.input]]`
# block, as written, is the primary of a channel of its own (a slate
# behind it); each channel goes on air from that input (the log, and
# nonstopctl status on the daemon's private bus: ActiveInput, the input
# receiving and its last buffer moving), stays there, and records a
# continuous stream that decodes. The listener recipe's loop is proven:
# its ffmpeg killed, the channel fails over and is back on air once the
# loop listens again and nonstopd has called. The recipes' hosts and ports are the
# doc's: the test runs in a private network namespace (loopback only, a
# multicast route on it) whose /etc/hosts names nonstop.example.net and
# encoder.example.net 127.0.0.1. Every recipe of the doc is run by this
# test or by tests/rtmp_push_ingest.sh (checked here); the hardware
# encoder's inputs, which no sender here can feed, pass nonstopd check.
source "$(dirname "$0")/common.bash"
RECIPES=(ffmpeg-srt-caller ffmpeg-srt-listener ffmpeg-udp ffmpeg-udp-multicast)
ELSEWHERE=(ffmpeg-rtmp) # tests/rtmp_push_ingest.sh

if [[ -z ${NONSTOP_PRIVATE_NET:-} ]]; then
  cargo build --release --quiet -p nonstop-supervisor
  for tool in ffmpeg ffprobe unshare dbus-daemon; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
  done
  ffmpeg -hide_banner -protocols 2>/dev/null | grep -qx " *srt" || fail "this ffmpeg has no libsrt"
fi
private_net "$@"
CTL="$ROOT/target/release/nonstopctl"

echo "-- every recipe of docs/senders.md is run by a test, and each is there"
for r in $(doc_recipes); do
  [[ " ${RECIPES[*]} ${ELSEWHERE[*]} " == *" ${r%.toml} "* ]] ||
    fail "docs/senders.md has a recipe no test runs: $r"
done
for r in "${RECIPES[@]}" "${ELSEWHERE[@]}"; do
  doc_recipe "$r" >/dev/null
  doc_recipe "$r.toml" >/dev/null
done
echo "   $(doc_recipes | wc -l) recipe blocks; this test runs ${#RECIPES[@]} senders"

cd "$WORK" || fail "cannot cd to $WORK"
programme_mp4

declare -A INPUT # recipe → the id of its input
for r in "${RECIPES[@]}"; do
  block=$(doc_recipe "$r.toml")
  [[ $(grep -c '^\[\[channel.input\]\]' <<<"$block") == 1 ]] || fail "recipe $r.toml is not one [[channel.input]]"
  INPUT[$r]=$(sed -nE 's/^id = "([^"]+)"$/\1/p' <<<"$block")
  [[ -n ${INPUT[$r]} ]] || fail "recipe $r.toml has no id"
  cat <<TOML
[[channel]]
id = "$r"
video = { width = 320, height = 180, framerate = 25 }
timeout = "500ms"
return_after = "2s"

$block

[[channel.input]]
id = "slate"
uri = "slate://colour/blue"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 300
keyframe_interval = "1s"

[[channel.output]]
id = "rec"
uri = "file://$WORK/$r.ts"

TOML
done >"$WORK/ch.toml"
"$NONSTOPD" check "$WORK/ch.toml" >"$WORK/check.txt" || { cat "$WORK/check.txt"; fail "the config does not check"; }

echo "-- the hardware encoder's inputs pass nonstopd check"
{
  printf '[[channel]]\nid = "hardware"\n\n'
  doc_recipe hardware-encoder.toml config
  printf '\n[[channel.input]]\nid = "slate"\nuri = "slate://colour/blue"\n'
} >"$WORK/hardware.toml"
"$NONSTOPD" check "$WORK/hardware.toml" >"$WORK/check.txt" 2>&1 || { cat "$WORK/check.txt"; fail "docs/senders.md's hardware encoder inputs do not check"; }
echo "   $(grep -c '^\[\[channel.input\]\]' "$WORK/hardware.toml") inputs"

# send RECIPE: runs the recipe as written; its pid in TX[RECIPE].
declare -A TX
send() { send_recipe "$1" "TX[$1]"; }

echo "-- senders and nonstopd"
private_bus
# ffmpeg's listener first: nonstopd's caller input then connects at once.
send ffmpeg-srt-listener
send ffmpeg-udp
send ffmpeg-udp-multicast
log="$WORK/nonstopd.log"
started=$(now)
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --address "$addr" --metrics "" 2>"$log"
wait_log "$log" "srt listener open listener=0.0.0.0:9000" 30 >/dev/null
send ffmpeg-srt-caller # it calls: the listener must be open

echo "-- each channel on air from its recipe's input"
for r in "${RECIPES[@]}"; do
  line=$(wait_log "$log" "switched .* → ${INPUT[$r]} channel=$r " 60)
  t=$("$PY" -c "print('%.1f' % ($(log_time "$line") - $started))")
  echo "   $r: ${INPUT[$r]} on air ${t} s after nonstopd started"
done

# status CHANNEL: "ACTIVE STATE LAST_BUFFER_US" of the channel's recipe
# input, from nonstopctl status --json on the private bus.
status() {
  timeout 20 "$CTL" --address "$addr" status "$1" --json |
    "$PY" -c '
import json, sys
ch = json.load(sys.stdin)
want = sys.argv[1]
row = [r for r in ch["Inputs"] if r["id"] == want]
assert row, "no input %s in %s" % (want, ch["Inputs"])
print(ch["ActiveInput"] or "-", row[0]["state"], row[0]["last_seen"])' "${INPUT[$1]}"
}
declare -A LAST
for r in "${RECIPES[@]}"; do
  read -r active state last < <(status "$r")
  [[ $active == "${INPUT[$r]}" && $state == receiving ]] ||
    fail "$r: nonstopctl status says $active on air, ${INPUT[$r]} $state (want ${INPUT[$r]} receiving)"
  LAST[$r]=$last
done
sleep 5
for r in "${RECIPES[@]}"; do
  read -r active state last < <(status "$r")
  [[ $active == "${INPUT[$r]}" && $state == receiving ]] ||
    fail "$r: 5 s later nonstopctl status says $active on air, ${INPUT[$r]} $state"
  ((last > LAST[$r])) || fail "$r: the last buffer of ${INPUT[$r]} did not move in 5 s"
  echo "   $r: nonstopctl status: ActiveInput=$active, ${INPUT[$r]} receiving, last buffer $(((last - LAST[$r]) / 1000)) ms further after 5 s"
done

echo "-- the listener recipe's loop: its ffmpeg killed, it listens again and nonstopd calls back"
r=ffmpeg-srt-listener
from=$(wc -l <"$log")
ff=$(pgrep -P "${TX[$r]}" -x ffmpeg) || fail "no ffmpeg under the $r loop"
kill -KILL "$ff"
killed=$(now)
line=$(wait_log "$log" "switched ${INPUT[$r]} → slate channel=$r " 5 "$from")
from=${line%%:*}
line=$(wait_log "$log" "switched slate → ${INPUT[$r]} channel=$r " 30 "$from")
back=$("$PY" -c "print('%.1f' % ($(log_time "$line") - $killed))")
# the loop's 1 s, nonstopd's caller backoff (0.5 s, then 1 s), the first
# keyframe (2 s GOP), return_after (2 s)
within 2 "$back" 15 "$r back on air after its ffmpeg was killed (s)"
kill -0 "${TX[$r]}" 2>/dev/null || fail "the $r loop exited"

echo "-- stop"
for r in "${RECIPES[@]}"; do kill_group "${TX[$r]}"; done
kill -INT "$daemon"
wait_exit "$daemon" 20 || fail "nonstopd exited with $?"
for r in ffmpeg-srt-caller ffmpeg-udp ffmpeg-udp-multicast; do
  if grep -E "switched ${INPUT[$r]} → .* channel=$r " "$log"; then
    fail "channel $r left ${INPUT[$r]} while its sender was running"
  fi
done
echo "   no other channel left its recipe's input while the sender ran"

echo "-- recordings: continuous, decoding cleanly"
for r in "${RECIPES[@]}"; do
  expect_continuous "$WORK/$r.ts" v 0.040 150
  decodes_clean "$WORK/$r.ts"
done
echo "PASS senders_ffmpeg"
