#!/usr/bin/env bash
# Loudness (issue 17): the meter against a tool nobody here wrote, then a
# channel that meters its inputs and programme and fails over on `loud`.
#
# 1. The same file, read by ffmpeg's ebur128 filter (libavfilter's own
#    BS.1770 code) and by nonstopwatchdog in gst-launch-1.0: integrated
#    loudness within 0.1 LU (ffmpeg prints one decimal), loudness range
#    within 0.2 LU and true peak within 0.2 dB (ffmpeg oversamples to
#    192 kHz by resampling, the crate by a 4× polyphase filter).
# 2. nonstopd: the primary, an ffmpeg UDP sender, plays a 1 kHz tone at
#    −23 LUFS, then at −6 LUFS (a feed cut in 17 LU hot); the backup is a
#    test source at −23. The channel fails over on `loud` (2 s): the
#    metrics read −23 ± 0.5 for the primary and the programme first; then
#    the alarm is raised, the channel switches to the backup at once, the
#    primary reads −6 ± 0.5 and the programme −23 ± 0.5 again; the alarm
#    is counted, /api/status shows the readings, and ffmpeg reads the
#    recording's last seconds (the programme as aired, through AAC) at
#    −23 ± 0.5 LUFS.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor -p gst-plugin-nonstop
for tool in ffmpeg gst-launch-1.0 curl dbus-daemon; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
done
export GST_PLUGIN_PATH="$ROOT/target/release"

echo "-- the meter and ffmpeg's ebur128 read the same file alike"
# 40 s of stereo: pink noise (each side its own), a tone, louder brown
# noise: a programme with a range, peaks between the samples and gating.
ffmpeg -nostdin -v error \
  -f lavfi -i "anoisesrc=c=pink:a=0.05:d=15:r=48000:seed=1" -f lavfi -i "anoisesrc=c=pink:a=0.05:d=15:r=48000:seed=2" \
  -f lavfi -i "sine=f=997:r=48000:d=10" \
  -f lavfi -i "anoisesrc=c=brown:a=0.4:d=15:r=48000:seed=3" \
  -filter_complex "[0][1]amerge=inputs=2[n];[2]aformat=channel_layouts=stereo[t];[3]aformat=channel_layouts=stereo[b];[n][t][b]concat=n=3:v=0:a=1" \
  -c:a pcm_f32le -y "$WORK/prog.wav" || fail "ffmpeg could not make the test file"
ffmpeg -nostdin -nostats -hide_banner -i "$WORK/prog.wav" -filter_complex ebur128=peak=true -f null - 2>"$WORK/ffmpeg.txt" ||
  fail "ffmpeg ebur128: $(tail -3 "$WORK/ffmpeg.txt")"
gst-launch-1.0 -m filesrc location="$WORK/prog.wav" ! wavparse ! audioconvert ! audio/x-raw,format=F32LE \
  ! nonstopwatchdog stall-timeout=0 loudness-interval=1000000000 ! fakesink >"$WORK/gst.txt" 2>&1 ||
  fail "gst-launch: $(tail -3 "$WORK/gst.txt")"
"$PY" - "$WORK/ffmpeg.txt" "$WORK/gst.txt" <<'PY' || fail "the meter and ffmpeg disagree"
import re, sys
ff = open(sys.argv[1]).read().split("Summary:")[-1]
want = {k: float(re.search(p, ff).group(1)) for k, p in
        [("integrated", r"I:\s+(-?[\d.]+) LUFS"), ("range", r"LRA:\s+(-?[\d.]+) LU"),
         ("true-peak", r"Peak:\s+(-?[\d.]+) dBFS")]}
msgs = [l for l in open(sys.argv[2]) if "nonstop-loudness" in l]
if len(msgs) < 40:
    sys.exit(f"{len(msgs)} nonstop-loudness messages for 40 s, want 39 and the one at EOS")
val = lambda l, k: float(re.search(rf"{k}=\(double\)(-?[\d.e+-]+)", l).group(1))
got = {"integrated": val(msgs[-1], "integrated"), "range": val(msgs[-1], "range"),
       "true-peak": max(val(l, "true-peak") for l in msgs)}
ok = True
for k, bound in [("integrated", 0.1), ("range", 0.2), ("true-peak", 0.2)]:
    d = abs(got[k] - want[k])
    print(f"   {k}: nonstopwatchdog {got[k]:.2f}, ffmpeg {want[k]:.1f} (|Δ| {d:.2f}, bound {bound})")
    ok &= d <= bound + 1e-9
sys.exit(0 if ok else 1)
PY

echo "-- a channel meters its inputs and programme, and fails over on loud"
CH=loud
port=$(free_port)
mport=$(free_port)
hot_at=15 # s into the primary's stream: −23 → −6 LUFS
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "$CH"
video = { width = 320, height = 180, framerate = 25 }
timeout = "500ms"
return_after = "2s"

[channel.watchdog]
fail_on = ["stall", "loud"]
loud_timeout = "2s"

[[channel.input]]
id = "primary"
uri = "udp://127.0.0.1:$port"

[[channel.input]]
id = "backup"
uri = "test://ball?tone=1000&level=-23"

[channel.encoder]
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "rec"
uri = "file://$WORK/out.ts"
TOML
"$NONSTOPD" check "$WORK/ch.toml" >"$WORK/check.txt" || { cat "$WORK/check.txt"; fail "the config does not check"; }
grep -q "loudness alarms (EBU R128): loud (over -13 LUFS, for 2s)" "$WORK/check.txt" ||
  fail "check does not show the loudness alarm: $(cat "$WORK/check.txt")"
private_bus
log="$WORK/nonstopd.log"
# A 1 kHz sine's loudness is its peak level: 0.0708 is −23 dBFS, 0.501 −6.
spawn sender ffmpeg -nostdin -v error -re \
  -f lavfi -i "testsrc2=size=320x180:rate=25" \
  -f lavfi -i "aevalsrc=exprs='if(lt(t,$hot_at),0.0708,0.501)*sin(2*PI*1000*t)':s=48000:c=stereo" \
  -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -c:a aac -b:a 192k \
  -f mpegts "udp://127.0.0.1:$port?pkt_size=1316"
sent_at=$(now)
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --address "$addr" --metrics "127.0.0.1:$mport" 2>"$log"

# metric NAME LABELS: the sample's value, or nothing.
metric() {
  curl -s "http://127.0.0.1:$mport/metrics" |
    "$PY" -c 'import sys
name, labels = sys.argv[1], sys.argv[2]
for l in sys.stdin:
    if l.startswith(name + "{") and all(p in l for p in labels.split(",")):
        print(l.split()[-1]); break' "$1" "$2"
}
# settle NAME LABELS WANT TIMEOUT WHAT: waits until the sample is within
# 0.5 of WANT (the encoders in between: AAC twice), then checks it.
settle() {
  local deadline=$(($(date +%s) + $4)) v=""
  while (($(date +%s) < deadline)); do
    v=$(metric "$1" "$2")
    if [[ -n $v ]] && "$PY" -c "import sys; sys.exit(0 if abs($v - ($3)) <= 0.5 else 1)"; then break; fi
    sleep 0.2
  done
  within "$(($3 * 10 - 5))e-1" "${v:-nan}" "$(($3 * 10 + 5))e-1" "$5"
}

line=$(wait_log "$log" "switched .* → primary" 30)
at=${line%%:*}
settle nonstop_input_loudness_lufs 'input="primary",window="short-term"' -23 8 "primary short-term LUFS"
settle nonstop_program_loudness_lufs 'channel="loud",window="short-term"' -23 8 "programme short-term LUFS"
settle nonstop_input_loudness_lufs 'input="backup",window="momentary"' -23 2 "backup momentary LUFS"
[[ -z $(metric nonstop_input_alarms_total 'input="primary",kind="loud"' | grep -v '^0$') ]] ||
  fail "a loud alarm before the primary was loud"
"$PY" -c "import sys; sys.exit(0 if $(now) - $sent_at < $hot_at - 1 else 1)" ||
  fail "the channel took too long to start: the primary went hot before it was measured at -23"

echo "-- the primary goes 17 LU hot"
line=$(wait_log "$log" "event=\"?alarm-raised.*input=primary.*alarm=loud" $((hot_at + 15)) "$at")
raised=$(log_time "$line")
# The 3 s window passes −13 LUFS 0.55 s after the step, then 2 s of timeout.
within 1.9 "$("$PY" -c "print(round($raised - $sent_at - $hot_at, 2))")" 4 "hot → loud alarm, s (sender start to log: ±0.5)"
line=$(wait_log "$log" "switched primary → backup" 5 "$at")
within 0 "$("$PY" -c "print(round($(log_time "$line") - $raised, 3))")" 0.5 "loud alarm → switch to the backup, s"
settle nonstop_input_loudness_lufs 'input="primary",window="short-term"' -6 5 "hot primary short-term LUFS"
settle nonstop_program_loudness_lufs 'channel="loud",window="short-term"' -23 8 "programme short-term LUFS on the backup"
[[ $(metric nonstop_input_alarms_total 'input="primary",kind="loud"') == 1 ]] ||
  fail "the loud alarm is not counted once: $(metric nonstop_input_alarms_total 'input="primary",kind="loud"')"
peak=$(metric nonstop_input_true_peak_dbtp 'input="primary"')
within -6.5 "$peak" -5.5 "hot primary true peak dBTP"
curl -s "http://127.0.0.1:$mport/api/status" >"$WORK/status.json"
"$PY" - "$WORK/status.json" <<'PY' || fail "/api/status does not show the loudness: $(cat "$WORK/status.json")"
import json, sys
c = json.load(open(sys.argv[1]))["channels"][0]
p = next(i for i in c["inputs"] if i["id"] == "primary")
assert "audio:loud" in p["alarms"], p["alarms"]
assert abs(p["loudness"]["short_term"] + 6) <= 0.5, p["loudness"]
assert abs(c["program_loudness"]["short_term"] + 23) <= 0.5, c["program_loudness"]
print("   /api/status: primary", p["loudness"]["short_term"], "LUFS with audio:loud; programme",
      c["program_loudness"]["short_term"], "LUFS")
PY
sleep 3 # three more seconds of the backup in the recording
kill -TERM "$daemon"
wait_exit "$daemon" 15 || fail "nonstopd did not stop cleanly"
kill_group "$sender"

echo "-- ffmpeg reads the aired programme's last seconds at -23 LUFS"
ffmpeg -nostdin -nostats -hide_banner -sseof -5 -i "$WORK/out.ts" -vn -filter_complex ebur128 -f null - 2>"$WORK/rec.txt" ||
  fail "ffmpeg cannot read the recording: $(tail -3 "$WORK/rec.txt")"
rec=$(sed -n 's/^ *I: *\(-*[0-9.]*\) LUFS/\1/p' "$WORK/rec.txt" | tail -1)
within -23.5 "$rec" -22.5 "recording's last 5 s, integrated LUFS (ffmpeg)"
echo "PASS loudness"
