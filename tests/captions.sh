#!/usr/bin/env bash
# Closed captions (issue 17) through nonstopd, judged by a decoder nobody
# here wrote: ffmpeg's ccaption_dec (lavfi movie=…[out+subcc]).
#
# The primary sends CEA-608 pop-on captions "PRIMARY 001", "PRIMARY 002",
# … every 2 s at 29.97 fps, the backup "BACKUP 001", … at 50 fps, both in
# their H.264 SEI (tests/tools/cc-sender); the channel runs at 25 fps, so
# both inputs' captions cross a frame-rate change (5:6 and 2:1 — videorate
# drops frames, whose letters the pacer must not drop with them). A third
# input, a test pattern, has no captions: with captions = "required" it
# raises no-captions, and the captioned inputs never do. The primary dies
# mid-way: the recording must read the primary's captions, then the
# backup's, each exactly once and in order, two seconds apart, with at most
# the one caption in flight at the cut mixed (608 cannot resume a caption
# half loaded), and nothing of the primary after it.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor -p gst-plugin-nonstop
for tool in ffmpeg gst-launch-1.0 curl dbus-daemon; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
done
export GST_PLUGIN_PATH="$ROOT/target/release"
CC_SENDER="$ROOT/tests/tools/cc-sender"

CH=cc
p1=$(free_port)
p2=$(free_port)
mport=$(free_port)
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "$CH"
video = { width = 320, height = 180, framerate = 25 }
timeout = "500ms"
captions = "required"

[channel.watchdog]
fail_on = ["stall", "no-captions"]
no_captions_timeout = "3s"

[[channel.input]]
id = "primary"
uri = "udp://127.0.0.1:$p1"

[[channel.input]]
id = "backup"
uri = "udp://127.0.0.1:$p2"

[[channel.input]]
id = "nocc"
uri = "test://smpte"

[channel.encoder]
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "rec"
uri = "file://$WORK/out.ts"
TOML
"$NONSTOPD" check "$WORK/ch.toml" >"$WORK/check.txt" || { cat "$WORK/check.txt"; fail "the config does not check"; }
grep -q "captions (CEA-608/708): required: an input without them for 3s raises no-captions" "$WORK/check.txt" ||
  fail "check does not show the captions: $(cat "$WORK/check.txt")"
grep -q "primary: x264enc (.*; captions as SEI)" "$WORK/check.txt" ||
  fail "check does not say x264enc writes captions: $(cat "$WORK/check.txt")"

private_bus
log="$WORK/nonstopd.log"
spawn primary "$CC_SENDER" PRIMARY 30000/1001 2 udpsink host=127.0.0.1 port="$p1"
spawn backup "$CC_SENDER" BACKUP 50/1 2 udpsink host=127.0.0.1 port="$p2"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --address "$addr" --metrics "127.0.0.1:$mport" 2>"$log"

line=$(wait_log "$log" "switched .* → primary" 30)
at=${line%%:*}
echo "-- the test pattern has no captions: no-captions (3 s)"
wait_log "$log" "event=\"?alarm-raised.*input=nocc.*alarm=no-captions" 10 >/dev/null
sleep 9 # four of the primary's captions on air
echo "-- the primary dies"
kill_group "$primary"
line=$(wait_log "$log" "switched primary → backup" 5 "$at")
sleep 9 # four of the backup's
grep -E "alarm-raised.*input=(primary|backup).*no-captions" "$log" &&
  fail "a captioned input raised no-captions"
kill -TERM "$daemon"
wait_exit "$daemon" 15 || fail "nonstopd did not stop cleanly"
kill_group "$backup"

echo "-- ffmpeg decodes the recording's captions"
ffmpeg -nostdin -v error -f lavfi -i "movie=$WORK/out.ts[out0+subcc]" -map 0:1 -y "$WORK/out.srt" 2>"$WORK/ffmpeg.txt" ||
  fail "ffmpeg cannot read the captions: $(tail -3 "$WORK/ffmpeg.txt")"
"$PY" - "$WORK/out.srt" <<'PY' || fail "the captions did not come through whole: $(cat "$WORK/out.srt")"
import re, sys
cues = []
for block in open(sys.argv[1]).read().strip().split("\n\n"):
    lines = block.splitlines()
    h, m, s, ms = map(int, re.match(r"(\d+):(\d+):(\d+),(\d+)", lines[1]).groups())
    text = re.sub(r"<[^>]*>|\{[^}]*\}", "", " ".join(lines[2:])).strip()
    cues.append((h * 3600 + m * 60 + s + ms / 1000, text))
print("   cues:", ", ".join(f"{t:.2f} {x}" for t, x in cues))
good = re.compile(r"^(PRIMARY|BACKUP) (\d{3})$")
labels = [good.match(x) for _, x in cues]
cut = next(i for i, m in enumerate(labels) if m and m.group(1) == "BACKUP")
bad = [i for i, m in enumerate(labels) if not m]
# The caption in flight at the cut may be mixed; nothing else.
assert all(i in (cut - 1,) for i in bad), f"garbled cues {[cues[i] for i in bad]}"
for who, part in (("PRIMARY", labels[:cut]), ("BACKUP", labels[cut:])):
    part = [(i, m) for i, m in enumerate(part) if m]
    assert all(m.group(1) == who for _, m in part), f"{who}'s part mixes inputs: {cues}"
    numbers = [int(m.group(2)) for _, m in part]
    assert len(numbers) >= 3, f"{len(numbers)} of {who}'s captions"
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), \
        f"{who}'s captions lost or repeated: {numbers}"
    print(f"   {who}: {len(numbers)} captions, numbers {numbers[0]}..{numbers[-1]}, each once, in order")
# Paced, not delayed: each caption follows the one before by the sender's
# 2 s (one frame's leeway each way); a backlog would stretch or squeeze them.
for (t0, a), (t1, b) in zip(cues, cues[1:]):
    if good.match(a) and good.match(b) and a.split()[0] == b.split()[0]:
        assert abs(t1 - t0 - 2.0) <= 0.08, f"{a} at {t0:.2f} s, {b} at {t1:.2f} s: not 2 s apart"
print("   consecutive captions of an input are 2.00 ± 0.08 s apart")
PY
expect_continuous "$WORK/out.ts" v 0.04 400
echo "PASS captions"
