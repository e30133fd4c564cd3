#!/usr/bin/env bash
# End to end (issue 19 #4): every input and output path the docs promise
# carries real media from a peer nobody here wrote, and every software
# encoder runs a channel:
#   - RTMP in and out through nginx's RTMP module (ffmpeg publishes; the
#     output is played back from nginx), and RTMPS in and out through
#     stunnel in front of it, its certificate checked;
#   - RTSP in, from a GstRtspServer (tests/tools/rtsp-server);
#   - HLS in, a live playlist ffmpeg writes, served over HTTP;
#   - UDP multicast in, on the loopback of a private network namespace;
#   - x265 (h265) and openh264 encoders, each recording a channel.
# Each channel goes on air with its primary, stays there, and records a
# continuous, cleanly decoding file of the right codec.
source "$(dirname "$0")/common.bash"

# A private network namespace: loopback only, with a multicast route, so
# the multicast group stays on this box and needs no real interface. And a
# private mount namespace, where the system's CA bundle also trusts this
# test's own certificate authority (nothing outside changes).
if [[ -z ${REAL_MEDIA_NETNS:-} ]]; then
  cargo build --release --quiet -p nonstop-supervisor
  exec env REAL_MEDIA_NETNS=1 unshare --net --mount bash "$0" "$@"
fi
ip link set lo up
ip route add 224.0.0.0/4 dev lo
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat /etc/ssl/certs/ca-certificates.crt "$WORK/cert.pem" >"$WORK/ca-bundle.crt"
mount --bind "$WORK/ca-bundle.crt" /etc/ssl/certs/ca-certificates.crt

for tool in nginx ffmpeg stunnel4; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
done
rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so
[[ -e $rtmp_module ]] || fail "nginx's RTMP module is missing (libnginx-mod-rtmp)"

rtmp_port=$(free_port)
rtmps_port=$(free_port)
rtsp_port=$(free_port)
http_port=$(free_port)
mc_port=$(free_port)
group=239.255.42.7

echo "-- peers: nginx (RTMP), a GstRtspServer, an HTTP server, senders"
mkdir -p "$WORK/nginx" "$WORK/hls"
cat >"$WORK/nginx/nginx.conf" <<CONF
load_module $rtmp_module;
daemon off;
master_process off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
events { worker_connections 64; }
rtmp {
  server {
    listen 127.0.0.1:$rtmp_port;
    application live { live on; }
  }
}
CONF
spawn nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
cat >"$WORK/stunnel.conf" <<CONF
foreground = yes
pid =
[rtmps]
accept = 127.0.0.1:$rtmps_port
connect = 127.0.0.1:$rtmp_port
cert = $WORK/cert.pem
key = $WORK/key.pem
CONF
spawn tls stunnel4 "$WORK/stunnel.conf" 2>"$WORK/stunnel.log"
spawn rtsp "$PY" "$ROOT/tests/tools/rtsp-server" "$rtsp_port"
spawn http "$PY" -m http.server --bind 127.0.0.1 --directory "$WORK/hls" "$http_port" 2>"$WORK/http.log"
# ffmpeg_live VAR ARGS...: a live 320x180 25 fps test picture and a tone,
# H.264/AAC, GOP 1 s, to ARGS (format and destination).
ffmpeg_live() {
  local var=$1
  shift
  spawn "$var" ffmpeg -nostdin -hide_banner -loglevel error -re \
    -f lavfi -i testsrc2=size=320x180:rate=25 -f lavfi -i sine=frequency=440 \
    -c:v libx264 -preset ultrafast -g 25 -c:a aac -ar 48000 "$@"
}
ffmpeg_live pub_rtmp -f flv "rtmp://127.0.0.1:$rtmp_port/live/in"
ffmpeg_live pub_rtmps -f flv "rtmps://127.0.0.1:$rtmps_port/live/ins"
ffmpeg_live pub_hls -f hls -hls_time 1 -hls_list_size 6 -hls_flags delete_segments "$WORK/hls/live.m3u8"
ffmpeg_live pub_mc -f mpegts "udp://$group:$mc_port?pkt_size=1316&ttl=1"

# channel ID INPUT_URI ENCODER_KEYS [OUTPUT_ID=URI...]: one channel's
# table: its input as primary, a slate, the encoder, a recording to
# $WORK/ID.ts and the outputs given.
channel() {
  local id=$1 uri=$2 enc=$3 o
  shift 3
  printf '[[channel]]\nid = "%s"\nvideo = { width = 320, height = 180, framerate = 25 }\n' "$id"
  printf '[[channel.input]]\nid = "primary"\nuri = "%s"\n' "$uri"
  printf '[[channel.input]]\nid = "slate"\nuri = "slate://colour/blue"\n'
  printf '[channel.encoder]\n%s\nvideo_bitrate = 400\nkeyframe_interval = "1s"\n' "$enc"
  for o in "$@" "rec=file://$WORK/$id.ts"; do
    printf '[[channel.output]]\nid = "%s"\nuri = "%s"\n' "${o%%=*}" "${o#*=}"
  done
  echo
}
x264='preset = "ultrafast"'
{
  channel rtmp "rtmp://127.0.0.1:$rtmp_port/live/in" "$x264" "rtmp=rtmp://127.0.0.1:$rtmp_port/live/out"
  channel rtmps "rtmps://127.0.0.1:$rtmps_port/live/ins" "$x264" "rtmps=rtmps://127.0.0.1:$rtmps_port/live/outs"
  channel rtsp "rtsp://127.0.0.1:$rtsp_port/test" 'backend = "openh264"'
  channel hls "http://127.0.0.1:$http_port/live.m3u8" $'codec = "h265"\nbackend = "x265"\npreset = "ultrafast"'
  channel mcast "udp://$group:$mc_port" "$x264"
} >"$WORK/ch.toml"
"$NONSTOPD" check "$WORK/ch.toml" >/dev/null || fail "the config does not check"

# The HLS playlist needs a segment or two before the input can open it.
for _ in $(seq 100); do [[ -s $WORK/hls/live.m3u8 ]] && break; sleep 0.1; done
[[ -s $WORK/hls/live.m3u8 ]] || fail "ffmpeg wrote no HLS playlist"

log="$WORK/nonstopd.log"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --no-dbus --metrics "" 2>"$log"
echo "-- every channel on air with its primary"
for ch in rtmp rtmps rtsp hls mcast; do
  line=$(wait_log "$log" "switched .* → primary channel=$ch " 40)
  echo "   $ch: ${line#*Z }" | cut -c1-110
done
echo "-- the RTMP and RTMPS outputs play back from nginx"
for out in "rtmp rtmp://127.0.0.1:$rtmp_port/live/out" "rtmps rtmps://127.0.0.1:$rtmps_port/live/outs"; do
  set -- $out
  wait_log "$log" "output started channel=$1 .*output=$1" 20 >/dev/null
  frames=$(timeout 20 ffprobe -v error -rw_timeout 10000000 -read_intervals "%+4" -count_frames -select_streams v \
    -show_entries stream=codec_name,nb_read_frames -of csv=p=0 "$2" | awk 'NR == 1')
  echo "   $2: $frames (codec, frames read in 4 s)"
  [[ ${frames%%,*} == h264 ]] || fail "the $1 output is not H.264: $frames"
  ((${frames##*,} >= 50)) || fail "the $1 output played back only ${frames##*,} frames in 4 s"
done
sleep 6
kill -INT "$daemon"
wait_exit "$daemon" 20 || fail "nonstopd exited with $?"

echo "-- none left its primary"
grep -E "switched primary → " "$log" && fail "a channel left its primary"
echo "-- recordings: the codec asked for, continuous, decoding cleanly"
declare -A CODEC=([rtmp]=h264 [rtmps]=h264 [rtsp]=h264 [hls]=hevc [mcast]=h264)
declare -A ENCODER=([rtsp]=openh264enc [hls]=x265enc)
for ch in rtmp rtmps rtsp hls mcast; do
  f="$WORK/$ch.ts"
  codec=$(ffprobe -v error -select_streams v -show_entries stream=codec_name -of csv=p=0 "$f" | awk 'NR == 1')
  [[ $codec == "${CODEC[$ch]}" ]] || fail "$ch.ts is $codec, want ${CODEC[$ch]}"
  if [[ -n ${ENCODER[$ch]:-} ]]; then
    grep -qE "encoder started channel=$ch .*element=\"?${ENCODER[$ch]}" "$log" ||
      fail "channel $ch did not encode with ${ENCODER[$ch]}"
  fi
  echo "   $ch.ts: $codec"
  expect_continuous "$f" v 0.040 200
  expect_continuous "$f" a 0.021333 300
  decodes_clean "$f"
done
echo "PASS real_media"
