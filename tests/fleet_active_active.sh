#!/usr/bin/env bash
# End to end: the fleet's epoch lock. Two boxes (two nonstopd, one etcd, on
# 127.0.0.1) run one active-active channel, started 3.3 s apart, each to its
# own HLS directory (the config differs only in [fleet].node and the output).
# Both boxes' playlists must be interchangeable: the same media sequence
# for the same segments (floor(UTC / segment)), segments that start on the
# same keyframe (the same PTS, read by ffprobe), and the epoch offset each
# box exports within one frame. Also: the different destinations do not
# count as a config mismatch in active-active; and the fleet seen through
# D-Bus by nonstopctl (box-a on a private bus): `fleet status --json`,
# `fleet drain` / `undrain` of box-b.
source "$(dirname "$0")/common.bash"
command -v etcd >/dev/null || { skipped "fleet_active_active: no etcd (apt-get install etcd-server)"; exit 0; }
cargo build --release --quiet -p nonstop-supervisor

client=$(free_port) peer=$(free_port)
spawn etcd_pid etcd --name aa --data-dir "$WORK/etcd" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "aa=http://127.0.0.1:$peer" --initial-cluster-state new \
  --logger zap --log-outputs stderr 2>"$WORK/etcd.log"
for _ in $(seq 100); do
  ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$client" endpoint health >/dev/null 2>&1 && break
  sleep 0.1
done

segment=2
private_bus
box() { # NAME METRICS-PORT BUS-OPTION...
  cat >"$WORK/$1.toml" <<TOML
[fleet]
endpoints = ["http://127.0.0.1:$client"]
node = "$1"
prefix = "/aa"

[[channel]]
id = "news"
video = { width = 320, height = 180, framerate = 25 }
fleet = { mode = "active-active" }

[[channel.input]]
id = "cam"
uri = "test://ball?label=AA"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 300
keyframe_interval = "1s"

[[channel.output]]
id = "hls"
uri = "hls://$WORK/hls-$1?segment=${segment}s&playlist=5"
TOML
  RUST_LOG=info spawn "pid_${1#box-}" "$NONSTOPD" --config "$WORK/$1.toml" "${@:3}" --metrics "127.0.0.1:$2" 2>"$WORK/$1.log"
}
ma=$(free_port) mb=$(free_port)
box box-a "$ma" --address "$addr"
sleep 3.3
box box-b "$mb" --no-dbus
wait_log "$WORK/box-a.log" 'fleet role channel=news role="active"' 20 >/dev/null
wait_log "$WORK/box-b.log" 'fleet role channel=news role="active"' 20 >/dev/null

echo "-- waiting for both playlists to list 4 segments"
for _ in $(seq 200); do
  na=$(grep -c '^segment' "$WORK/hls-box-a/index.m3u8" 2>/dev/null || true)
  nb=$(grep -c '^segment' "$WORK/hls-box-b/index.m3u8" 2>/dev/null || true)
  ((${na:-0} >= 4 && ${nb:-0} >= 4)) && break
  sleep 0.1
done
((${na:-0} >= 4 && ${nb:-0} >= 4)) || fail "playlists not written (box-a: ${na:-0} segments, box-b: ${nb:-0})"
# Read both between two segment closes.
sleep 0.5
cp "$WORK/hls-box-a/index.m3u8" "$WORK/a.m3u8"
cp "$WORK/hls-box-b/index.m3u8" "$WORK/b.m3u8"

# Segment number → (first video PTS, keyframe flag), per box.
"$PY" - "$WORK" "$segment" <<'PY' || fail "the two boxes' playlists are not interchangeable"
import subprocess, sys, os, time
work, seg = sys.argv[1], int(sys.argv[2])
def playlist(box):
    lines = open(f"{work}/{box[-1]}.m3u8").read().split("\n")
    seq = int(next(l for l in lines if l.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])
    names = [l for l in lines if l.startswith("segment")]
    return {seq + i: f"{work}/hls-{box}/{n}" for i, n in enumerate(names)}
def first(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,flags", "-of", "csv=p=0", path], capture_output=True, text=True).stdout
    pts, flags = out.split("\n")[0].split(",")[:2]
    return float(pts), flags.startswith("K")
a, b = playlist("box-a"), playlist("box-b")
common = sorted(set(a) & set(b))
now = time.time()
print(f"   box-a lists {min(a)}..{max(a)}, box-b {min(b)}..{max(b)}; floor(UTC / {seg} s) now = {int(now // seg)}")
assert len(common) >= 3, f"fewer than 3 segment numbers in common: {sorted(a)} vs {sorted(b)}"
# The numbers are UTC's: the newest listed segment began within a few
# segments of now.
assert 0 <= int(now // seg) - max(a) <= 3, f"box-a's newest segment {max(a)} is not floor(UTC / {seg}) = {int(now // seg)}"
for n in common:
    (pa, ka), (pb, kb) = first(a[n]), first(b[n])
    print(f"   segment {n}: box-a {os.path.basename(a[n])} starts at PTS {pa:.3f} (key {ka}), box-b {os.path.basename(b[n])} at {pb:.3f} (key {kb})")
    assert ka and kb, f"segment {n} does not start on a keyframe"
    assert abs(pa - pb) <= 0.040, f"segment {n}: boundaries {abs(pa - pb) * 1000:.0f} ms apart (more than one frame)"
PY

echo "-- the epoch offset each box exports"
for port in "$ma" "$mb"; do
  line=$(curl -s "http://127.0.0.1:$port/metrics" | grep '^nonstop_fleet_epoch_offset_seconds{' || true)
  [[ -n $line ]] || fail "no nonstop_fleet_epoch_offset_seconds on :$port"
  echo "   :$port $line"
  "$PY" -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if abs(v) <= 0.040 else 1)' "${line##* }" ||
    fail "epoch offset ${line##* } s is more than one frame (0.040 s)"
done
echo "-- nonstopctl fleet, through box-a's D-Bus API"
ctl() { "$ROOT/target/release/nonstopctl" --address "$addr" "$@"; }
ctl fleet status --json >"$WORK/fleet.json" || fail "nonstopctl fleet status --json failed"
"$PY" - "$WORK/fleet.json" <<'PY' || fail "fleet status: $(cat "$WORK/fleet.json")"
import json, sys
f = json.load(open(sys.argv[1]))
assert f["NodeName"] == "box-a" and f["EtcdReachable"], f
members = {m["name"]: m for m in f["Members"]}
assert set(members) == {"box-a", "box-b"} and all(m["alive"] for m in members.values()), members
ch = {c["Id"]: c for c in f["Channels"]}
assert ch["news"]["Role"] == "active", ch
print("   fleet status: node box-a, members box-a and box-b alive, news active")
PY
ctl fleet drain box-b >/dev/null || fail "nonstopctl fleet drain box-b failed"
for _ in $(seq 50); do ctl fleet status --json | grep -q '"drained": *true' && break; sleep 0.1; done
ctl fleet status --json | grep -q '"drained": *true' || fail "box-b not shown drained"
ctl fleet undrain box-b >/dev/null || fail "nonstopctl fleet undrain box-b failed"
for _ in $(seq 50); do ctl fleet status --json | grep -q '"drained": *true' || break; sleep 0.1; done
! ctl fleet status --json | grep -q '"drained": *true' || fail "box-b still drained after undrain"
out=$(ctl fleet drain 'bad name' 2>&1) && fail "an invalid node name was accepted"
grep -q InvalidArgument <<<"$out" || fail "an invalid node name: $out"
echo "   drain, undrain and a bad name through nonstopctl: ok"
grep -q config-mismatch "$WORK/box-a.log" "$WORK/box-b.log" && fail "active-active destinations were taken for a config mismatch"
echo "PASS fleet_active_active"
