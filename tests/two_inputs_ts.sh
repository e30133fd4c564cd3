#!/usr/bin/env bash
# End to end: the two-input recipe (primary stalls twice) writes an MPEG-TS
# whose video never stops: one frame every 40 ms from start to end.
source "$(dirname "$0")/common.bash"

log="$WORK/log.txt"
"$ROOT/pipelines/two-inputs.sh" --file "$WORK/out.ts" --duration 13 \
  --stall 2 --every 6 --return-after 1 --size 320x240 >"$log" 2>&1 ||
  { cat "$log"; fail "two-inputs.sh exited with $?"; }
cat "$log"
grep -q "\[stall\]" "$log" || fail "no stall failover in the log"
[[ $(grep -c "\[stall\]" "$log") -ge 2 ]] || fail "expected two stall failovers"
grep -q "\[recovered\]" "$log" || fail "no return to the primary in the log"
# 13 s at 25 fps; the muxer may drop the last few frames at EOS.
expect_continuous "$WORK/out.ts" v 0.040 300
echo "PASS two_inputs_ts"
