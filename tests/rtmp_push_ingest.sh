#!/usr/bin/env bash
# End to end (issue 16, RTMP push ingest): nginx's RTMP module with the
# shipped block (packaging/nginx-rtmp-nonstop.conf, included as it is) runs
# beside nonstopd; ffmpeg pushes with the RTMP recipe of docs/senders.md,
# and a channel pulls the stream with the recipe's [[channel.input]] block
# (a test pattern behind it). Both are run as written, in a private
# network namespace (nginx on its port 1935 there; /etc/hosts names
# nonstop.example.net 127.0.0.1), on nginx's own config, pid and log
# files in a temp dir: the system's nginx is never touched.
#   - the push goes on air;
#   - the push is killed: the channel fails over to the backup within its
#     timeout (+ slack for a loaded machine);
#   - the push returns after 3 s, then after 30 s: the input delivers
#     again within seconds of the push's start, however long it was away
#     (no backoff grows while a stream name waits for its publisher: the
#     RTMP input is rebuilt at once when it delivers nothing), and the
#     channel returns after return_after (+ slack); nonstopd's open files
#     do not grow while the input waits.
# nonstopctl status on the daemon's private bus agrees with the log at
# each step; the recording is continuous and decodes.
source "$(dirname "$0")/common.bash"
RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so
SNIPPET="$ROOT/packaging/nginx-rtmp-nonstop.conf"
TIMEOUT_MS=500
RETURN_AFTER=2

if [[ -z ${NONSTOP_PRIVATE_NET:-} ]]; then
  cargo build --release --quiet -p nonstop-supervisor
  for tool in nginx ffmpeg ffprobe unshare dbus-daemon; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
  done
  [[ -e $RTMP_MODULE ]] || fail "nginx's RTMP module is missing (libnginx-mod-rtmp; scripts/bootstrap installs it)"
fi
private_net "$@"
CTL="$ROOT/target/release/nonstopctl"
cd "$WORK" || fail "cannot cd to $WORK"
programme_mp4

echo "-- nginx with the shipped rtmp block"
mkdir -p nginx/logs
cat >nginx/nginx.conf <<CONF
load_module $RTMP_MODULE;
daemon off;
master_process off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log info;
events { worker_connections 64; }
include $SNIPPET;
CONF
nginx -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" ||
  fail "nginx -t refuses $SNIPPET (above)"
spawn nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log"
deadline=$(($(date +%s) + 10))
until (exec 3<>/dev/tcp/127.0.0.1/1935) 2>/dev/null; do
  (($(date +%s) < deadline)) || { cat nginx/error.log >&2; fail "nginx does not listen on 1935"; }
  sleep 0.1
done
echo "   listening on 1935"

block=$(doc_recipe ffmpeg-rtmp.toml)
input=$(sed -nE 's/^id = "([^"]+)"$/\1/p' <<<"$block")
key=$(sed -nE 's|^uri = "rtmp://127.0.0.1/live/([^"]+)"$|\1|p' <<<"$block")
[[ -n $input && -n $key ]] || fail "the ffmpeg-rtmp.toml recipe is not an rtmp://127.0.0.1/live/KEY input: $block"
doc_recipe ffmpeg-rtmp | grep -qF "rtmp://nonstop.example.net/live/$key" ||
  fail "the ffmpeg-rtmp recipe does not push to the key its input pulls ($key)"
cat >ch.toml <<TOML
[[channel]]
id = "rtmp"
video = { width = 320, height = 180, framerate = 25 }
timeout = "${TIMEOUT_MS}ms"
return_after = "${RETURN_AFTER}s"
# Each return is judged against return_after, not a hold-off that flap
# damping doubled.
flap_window = "1s"

$block

[[channel.input]]
id = "backup"
uri = "test://smpte?label=BACKUP"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 300
keyframe_interval = "1s"

[[channel.output]]
id = "rec"
uri = "file://$WORK/rec.ts"
TOML
"$NONSTOPD" check ch.toml >check.txt || { cat check.txt; fail "the config does not check"; }

private_bus
log="$WORK/nonstopd.log"
RUST_LOG=info spawn daemon "$NONSTOPD" --config ch.toml --address "$addr" --metrics "" 2>"$log"
wait_log "$log" "D-Bus control published" 30 >/dev/null

# on_air WANT: nonstopctl status (polled, 5 s at most) shows WANT on air.
on_air() {
  local deadline=$(($(date +%s) + 5)) active
  while :; do
    active=$(timeout 10 "$CTL" --address "$addr" status rtmp --json |
      "$PY" -c 'import json, sys; print(json.load(sys.stdin)["ActiveInput"] or "-")') || active="?"
    [[ $active == "$1" ]] && break
    (($(date +%s) < deadline)) || fail "nonstopctl status shows $active on air, want $1"
    sleep 0.2
  done
  echo "   nonstopctl status: ActiveInput=$active"
}
# push: the recipe, as written; its start time in $pushed.
push() {
  send_recipe ffmpeg-rtmp tx
  pushed=$(now)
}

echo "-- ffmpeg pushes: on air from $input"
push
line=$(wait_log "$log" "switched .* → $input channel=rtmp " 40)
from=${line%%:*}
echo "   on air $("$PY" -c "print('%.1f' % ($(log_time "$line") - $pushed))") s after the push started"
on_air "$input"
sleep 3

# cycle GAP: kills the push, judges the failover, brings the push back
# after GAP s and judges the return.
cycle() {
  local gap=$1 killed lost failover eos restored reconnect back
  kill_group "$tx"
  killed=$(now)
  line=$(wait_log "$log" "switched $input → backup channel=rtmp " 10 "$from")
  from=${line%%:*}
  failover=$("$PY" -c "print('%.2f' % ($(log_time "$line") - $killed))")
  lost=$(wait_log "$log" "input lost.* channel=rtmp .*input=$input " 5 "$((from - 5))")
  eos=$("$PY" -c "print('%.2f' % max(0, $(log_time "$lost") - $killed))")
  echo "   push killed: the input saw it $eos s later ($(sed -E 's/.* reason="?([^"]*)"? .*/\1/' <<<"$lost"))"
  within 0 "$failover" "$("$PY" -c "print($TIMEOUT_MS / 1000 + 1.5)")" "failover to backup after the push was killed (s; timeout ${TIMEOUT_MS} ms)"
  on_air backup
  fds=$(ls "/proc/$daemon/fd" | wc -l)
  sleep "$gap"
  # The waiting input reconnects every 5 s: nothing may leak (rtmp2src
  # leaks 2 descriptors per failed connect: docs/reliability.md).
  grown=$(($(ls "/proc/$daemon/fd" | wc -l) - fds))
  ((grown <= 2)) || fail "nonstopd's open files grew by $grown while the push was away ${gap} s"
  echo "   while the push was away ${gap} s: nonstopd's open files $fds, then +$grown"
  push
  line=$(wait_log "$log" "input restored channel=rtmp .*input=$input " 20 "$from")
  restored=$line
  line=$(wait_log "$log" "switched backup → $input channel=rtmp " 20 "$from")
  from=${line%%:*}
  reconnect=$("$PY" -c "print('%.2f' % ($(log_time "$restored") - $pushed))")
  back=$("$PY" -c "print('%.2f' % ($(log_time "$line") - $pushed))")
  # ffmpeg's start and first keyframe: 0.5-0.7 s. A push that starts while
  # the waiting input reconnects (every 5 s; about 1 s of it) is joined
  # mid-GOP, and nginx (wait_key on) starts the input on the next
  # keyframe: the recipe's GOP (2 s) more.
  within 0 "$reconnect" 5 "after a ${gap} s absence: the input delivers again (s after the push started)"
  within "$RETURN_AFTER" "$back" "$((RETURN_AFTER + 5))" "after a ${gap} s absence: $input back on air (s after the push started; return_after ${RETURN_AFTER} s)"
  on_air "$input"
}
echo "-- the push dies and returns after 3 s"
cycle 3
sleep 2
echo "-- the push dies and returns after 30 s"
cycle 30
sleep 2

echo "-- stop"
kill_group "$tx"
kill -INT "$daemon"
wait_exit "$daemon" 20 || fail "nonstopd exited with $?"
if grep -E "input not receiving; restarting channel=rtmp .*input=$input " "$log"; then
  fail "the RTMP input waited out a backoff while its publisher was away (above)"
fi
echo "   while the push was away the input never waited out a backoff"
n=$(grep -cF "publish: name='$key'" nginx/error.log || true)
((n == 3)) || fail "nginx saw $n publishes of the key, want 3"
echo "   nginx saw the 3 pushes"
expect_continuous rec.ts v 0.040 1000
decodes_clean rec.ts
echo "PASS rtmp_push_ingest"
