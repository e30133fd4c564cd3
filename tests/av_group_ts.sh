#!/usr/bin/env bash
# End to end: grouped audio + video switches; both streams of the MPEG-TS
# stay continuous while the inputs fail over and back.
source "$(dirname "$0")/common.bash"

log="$WORK/log.txt"
"$ROOT/pipelines/av-group.sh" --file "$WORK/out.ts" --duration 13 \
  --stall 2 --every 6 --return-after 1 --size 320x240 >"$log" 2>&1 ||
  { cat "$log"; fail "av-group.sh exited with $?"; }
cat "$log"
grep -q "video: .*\[stall\]" "$log" || fail "no video failover in the log"
grep -q "audio: .*\[stall\]" "$log" || fail "no audio failover in the log"
expect_continuous "$WORK/out.ts" v 0.040 300
# AAC frames of 1024 samples at 48 kHz.
expect_continuous "$WORK/out.ts" a 0.021333 550
echo "PASS av_group_ts"
