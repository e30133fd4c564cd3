#!/usr/bin/env bash
# Several audio tracks (issue 17), judged by ffprobe and ffmpeg.
#
# A channel with three tracks: eng, spa and fre. The primary, an ffmpeg
# UDP sender, has Spanish (880 Hz) first in its PMT and English (440 Hz)
# second, each tagged, and no French: the tracks find their streams by
# language, and French gets silence and raises `audio-fre:missing` (log,
# metrics, /api/status). The backup (a darker picture) has three
# untagged streams (550, 990, 660 Hz): its `[channel.input.audio]` maps
# eng and spa by index, French takes the third by position. The primary
# is killed: the channel fails over.
#
# In the TS, MKV and MP4 recordings: three audio streams, eng, spa, fre,
# with their languages. In the TS, each track runs without a gap across
# the failover, and all cut with the picture: English goes 440 → 550 Hz,
# Spanish 880 → 990 Hz and French silence → 660 Hz, each within 0.1 s of
# the first dark frame. In HLS: the master playlist lists English (in
# the variant), Spanish and French (audio-only playlists of their own)
# with their languages in one group, and each plays: the variant's
# segments hold video and English, the Spanish playlist's one audio
# stream, without a gap.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor -p gst-plugin-nonstop
for tool in ffmpeg ffprobe curl dbus-daemon; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
done
export GST_PLUGIN_PATH="$ROOT/target/release"

CH=tracks
p1=$(free_port)
p2=$(free_port)
mport=$(free_port)
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "$CH"
video = { width = 320, height = 180, framerate = 25 }
timeout = "500ms"
return_after = "60s"

[[channel.audio]]
id = "eng"
language = "eng"

[[channel.audio]]
id = "spa"
language = "spa"
bitrate = 96

[[channel.audio]]
id = "fre"
language = "fre"

[[channel.input]]
id = "primary"
uri = "udp://127.0.0.1:$p1"

[[channel.input]]
id = "backup"
uri = "udp://127.0.0.1:$p2"
audio = { eng = 0, spa = 1 }

[channel.encoder]
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "ts"
uri = "file://$WORK/rec.ts"

[[channel.output]]
id = "mkv"
uri = "file://$WORK/rec.mkv"

[[channel.output]]
id = "mp4"
uri = "file://$WORK/rec.mp4"

[[channel.output]]
id = "hls"
uri = "hls://$WORK/hls?segment=2s&playlist=30"
TOML
"$NONSTOPD" check "$WORK/ch.toml" >"$WORK/check.txt" || { cat "$WORK/check.txt"; fail "the config does not check"; }
grep -q "audio eng \[eng\] 48000 Hz 2 ch; spa \[spa\] 48000 Hz 2 ch; fre \[fre\] 48000 Hz 2 ch" "$WORK/check.txt" &&
  grep -q "audio encoder (spa): AAC 96 kbit/s" "$WORK/check.txt" ||
  fail "check does not describe the tracks: $(cat "$WORK/check.txt")"
private_bus
log="$WORK/nonstopd.log"
spawn primary ffmpeg -nostdin -v error -re \
  -f lavfi -i "testsrc2=size=320x180:rate=25" \
  -f lavfi -i "sine=f=880:sample_rate=48000" -f lavfi -i "sine=f=440:sample_rate=48000" \
  -map 0:v -map 1:a -map 2:a -metadata:s:a:0 language=spa -metadata:s:a:1 language=eng \
  -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -c:a aac -ac 2 \
  -f mpegts "udp://127.0.0.1:$p1?pkt_size=1316"
spawn backup ffmpeg -nostdin -v error -re \
  -f lavfi -i "color=c=0x202020:size=320x180:rate=25" -f lavfi -i "sine=f=550:sample_rate=48000" \
  -f lavfi -i "sine=f=990:sample_rate=48000" -f lavfi -i "sine=f=660:sample_rate=48000" \
  -map 0:v -map 1:a -map 2:a -map 3:a -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -c:a aac -ac 2 \
  -f mpegts "udp://127.0.0.1:$p2?pkt_size=1316"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --address "$addr" --metrics "127.0.0.1:$mport" 2>"$log"

line=$(wait_log "$log" "switched .* → primary" 30)
at=${line%%:*}
wait_log "$log" "audio tracks: eng ← stream 1 \[eng\], spa ← stream 0 \[spa\], fre: none \(silence\) .*input=primary" 10 >/dev/null ||
  fail "the primary's streams are not mapped by language: $(grep 'audio tracks' "$log")"
wait_log "$log" "audio tracks: eng ← stream 0, spa ← stream 1, fre ← stream 2 .*input=backup" 10 >/dev/null ||
  fail "the backup's streams are not mapped by index and position: $(grep 'audio tracks' "$log")"
wait_log "$log" "alarm-raised.*input=primary.*media=audio-fre.*alarm=\"?missing" 5 >/dev/null
echo "   the primary's tracks by language, its French missing (alarm); the backup's by index and position"
# The recording's first seconds hold a few clicks on every track (one as
# on several: an open defect of the start, see docs/config.md); the tones
# are judged in the steady state, from the fourth second on.
sleep 8
echo "-- the primary dies"
kill_group "$primary"
wait_log "$log" "switched primary → backup" 5 "$at" >/dev/null
sleep 6
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
grep -q '^nonstop_input_alarms_total{channel="tracks",input="primary",kind="missing"} 1$' <<<"$metrics" &&
  grep -q '^nonstop_input_alarms_total{channel="tracks",input="backup",kind="missing"} 0$' <<<"$metrics" ||
  fail "the missing track is not counted: $(grep alarms_total <<<"$metrics")"
curl -s "http://127.0.0.1:$mport/api/status" >"$WORK/status.json"
"$PY" - "$WORK/status.json" <<'PY' || fail "/api/status does not show the missing track: $(cat "$WORK/status.json")"
import json, sys
c = json.load(open(sys.argv[1]))["channels"][0]
p = next(i for i in c["inputs"] if i["id"] == "primary")
assert "audio-fre:missing" in p["alarms"], p["alarms"]
b = next(i for i in c["inputs"] if i["id"] == "backup")
assert not any(a.endswith(":missing") for a in b["alarms"]), b["alarms"]
print("   /api/status: primary", p["alarms"], "backup", b["alarms"])
PY
kill -TERM "$daemon"
wait_exit "$daemon" 15 || fail "nonstopd did not stop cleanly"
kill_group "$backup"

echo "-- every recording carries the three tracks with their languages"
# MP4 writes ISO 639-2/T (French: fra), TS and MKV ISO 639-2/B (fre).
for f in rec.ts rec.mkv rec.mp4; do
  want="eng spa fre "
  [[ $f == *.mp4 ]] && want="eng spa fra "
  langs=$(ffprobe -v error -select_streams a -show_entries stream_tags=language -of csv=p=0 "$WORK/$f" | tr '\n' ' ')
  [[ $langs == "$want" ]] || fail "$f: audio languages \"$langs\", want \"$want\""
  echo "   $f: audio streams $langs"
done

echo "-- each track runs on across the failover, and cuts with the picture"
ffprobe -v error -f lavfi -i "movie=$WORK/rec.ts,signalstats" \
  -show_entries frame=pts_time:frame_tags=lavfi.signalstats.YAVG -of csv=p=0 >"$WORK/luma.csv" ||
  fail "ffprobe cannot measure the pictures"
for a in 0 1 2; do
  ffprobe -v error -select_streams "a:$a" -show_entries packet=pts_time -of csv=p=0 "$WORK/rec.ts" >"$WORK/a$a.pts"
  ffprobe -v error -select_streams "a:$a" -show_entries stream=start_time -of csv=p=0 "$WORK/rec.ts" >"$WORK/a$a.start"
  ffmpeg -nostdin -v error -i "$WORK/rec.ts" -map "0:a:$a" -ac 1 -ar 48000 -f s16le -y "$WORK/a$a.raw" ||
    fail "ffmpeg cannot decode audio track $a"
done
"$PY" - "$WORK" <<'PY' || fail "the tracks do not run on or do not cut with the picture"
import array, sys
w = sys.argv[1]
luma = [(float(t), float(y)) for t, y in (l.strip().split(",")[:2] for l in open(f"{w}/luma.csv") if l.count(",") >= 1)]
# The backup's dark picture after the primary's bright one (the channel
# may start on black before the primary arrives).
bright = next(i for i, (t, y) in enumerate(luma) if y >= 60)
cut = next(t for t, y in luma[bright:] if y < 60)
win = 0.04
def windows(a):
    s = array.array("h", open(f"{w}/a{a}.raw", "rb").read())
    start = float(open(f"{w}/a{a}.start").read().split()[0].strip(","))
    n = int(48000 * win)
    for i in range(0, len(s) - n, n):
        chunk = s[i:i + n]
        rms = (sum(x * x for x in chunk) / n) ** 0.5
        zc = sum(1 for j in range(1, n) if (chunk[j - 1] < 0) != (chunk[j] < 0))
        yield start + i / 48000, rms, zc / 2 / win
# Which stream a track carries is judged by its tone: in at least 90 % of
# its 40 ms windows from 3.5 to 1.5 s before the cut (the input stalls for
# the channel's timeout first, and the killed sender's last TS burst may
# end its sound early) and from 0.2 to 3 s after it. The windows off it
# are clicks, counted and shown, not judged here: nonstopswitch's audio
# queue still clicks while it learns an input's bursts (docs/config.md,
# open). The cut: the first three windows in a row in the backup's tone.
clicks = {}
for a, name, before, after in [(0, "eng", 440, 550), (1, "spa", 880, 990), (2, "fre", None, 660)]:
    pts = sorted(float(p.split(",")[0]) for p in open(f"{w}/a{a}.pts") if p.strip(", \n"))
    gap = max(b - a_ for a_, b in zip(pts, pts[1:]))
    assert gap < 0.05, f"{name}: a gap of {gap:.3f} s between two AAC frames"
    assert pts[0] < cut - 3 and pts[-1] > cut + 3, f"{name}: {pts[0]:.2f}–{pts[-1]:.2f} s, cut at {cut:.2f}"
    ws = list(windows(a))
    pre = [(t, r, f) for t, r, f in ws if cut - 3.5 < t < cut - 1.5]
    post = [(t, r, f) for t, r, f in ws if cut + 0.2 < t < cut + 3]
    on = (lambda r, f: abs(f - before) < 40) if before else (lambda r, f: r < 30)
    off = [(round(t - cut, 2), round(r), round(f)) for t, r, f in pre if not on(r, f)]
    off += [(round(t - cut, 2), round(r), round(f)) for t, r, f in post if abs(f - after) >= 40]
    share = 1 - len(off) / (len(pre) + len(post))
    assert share >= 0.9, f"{name}: {share:.0%} of the windows in the tone, want {before or 'silence'} then {after} Hz; " \
        f"off (s from the cut, RMS, Hz): {off[:8]}"
    clicks[name] = off
    # Three windows in a row at the tone's level and frequency: a click
    # or a window half silent can count the wrong number of crossings.
    tone = lambda i: all(abs(f - after) < 40 and r > 1000 for t, r, f in ws[i:i + 3])
    t_cut = next(ws[i][0] for i in range(len(ws)) if ws[i][0] > cut - 1 and tone(i))
    around = [(round(t - cut, 2), round(r), round(f)) for t, r, f in ws if abs(t - cut) < 0.4]
    d = t_cut - cut
    assert abs(d) <= 0.1, f"{name}: the sound cuts {d * 1000:.0f} ms from the picture; (s from it, RMS, Hz): {around}"
    print(f"   {name}: {len(pts)} AAC frames, longest gap {gap * 1000:.1f} ms; {str(before) + ' Hz' if before else 'silence'} "
          f"→ {after} Hz {d * 1000:+.0f} ms from the picture's cut at {cut:.2f} s; "
          f"{len(off)} of {len(pre) + len(post)} windows off the tone (clicks) {off[:4]}")
PY

echo "-- HLS: English in the variant, Spanish and French alternate renditions"
master="$WORK/hls/master.m3u8"
[[ -f $master ]] || fail "no master playlist: $(ls "$WORK/hls")"
grep -qx '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="eng",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES' "$master" &&
  grep -qx '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="spa",LANGUAGE="es",DEFAULT=NO,AUTOSELECT=YES,URI="audio-spa/index.m3u8"' "$master" &&
  grep -qx '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="fre",LANGUAGE="fr",DEFAULT=NO,AUTOSELECT=YES,URI="audio-fre/index.m3u8"' "$master" &&
  grep -q '^#EXT-X-STREAM-INF:.*,AUDIO="audio"$' "$master" && grep -qx 'index.m3u8' "$master" ||
  fail "the master playlist does not list the tracks: $(cat "$master")"
for p in index.m3u8 audio-spa/index.m3u8; do
  dir=$(dirname "$WORK/hls/$p")
  segs=$(grep -v '^#' "$WORK/hls/$p")
  [[ -n $segs ]] || fail "$p lists no segment"
  (cd "$dir" && cat $segs) >"$WORK/hls-$(basename "$dir").ts"
done
# kinds FILE: its streams' kinds (the SCTE-35 PID is a data stream).
kinds() { ffprobe -v error -show_entries stream=index,codec_type -of csv=p=0 "$1" | grep , | sort -u | cut -d, -f2 | tr '\n' ' '; }
streams=$(kinds "$WORK/hls-hls.ts")
[[ $streams == "video audio data " ]] || fail "the variant's segments hold \"$streams\", want video, one audio and SCTE-35"
streams=$(kinds "$WORK/hls-audio-spa.ts")
[[ $streams == "audio data " ]] || fail "the Spanish playlist's segments hold \"$streams\", want one audio stream and SCTE-35"
ffprobe -v error -select_streams a -show_entries packet=pts_time -of csv=p=0 "$WORK/hls-audio-spa.ts" |
  "$PY" -c 'import sys
pts = sorted(float(l.split(",")[0]) for l in sys.stdin if l.strip(", \n"))
gap = max(b - a for a, b in zip(pts, pts[1:]))
print(f"   audio-spa: {len(pts)} AAC frames over {pts[-1] - pts[0]:.1f} s, longest gap {gap * 1000:.1f} ms")
sys.exit(0 if gap < 0.05 and pts[-1] - pts[0] > 8 else 1)' || fail "the Spanish rendition has a gap or is short"
echo "PASS audio_tracks"
