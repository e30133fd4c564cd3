#!/usr/bin/env bash
# Two live test sources through nonstopswitch; the primary stops sending for a
# few seconds at a regular interval. The output (H.264 in MPEG-TS) keeps its
# cadence through every failover and return.
set -euo pipefail
# shellcheck source=pipelines/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STALL=3
EVERY=10
RETURN_AFTER=2
TIMEOUT_MS=500

usage() {
  cat <<EOF
Usage: ${0##*/} [options]

sink_0 = PRIMARY (SMPTE bars), sink_1 = BACKUP (bouncing ball). The primary
stops for --stall seconds every --every seconds; the switch fails over after
timeout (${TIMEOUT_MS} ms) and returns once the primary has been back for
--return-after seconds. Each switch is printed as it happens.

Stall pattern:
  --stall SEC         how long the primary stops (default $STALL)
  --every SEC         period of the stalls (default $EVERY; first stall at every-stall)
  --return-after SEC  hold-off before returning to the primary (default $RETURN_AFTER)
EOF
  nonstop_common_usage
}

nonstop_option() { nonstop_schedule_option "$@"; }

nonstop_parse_common "$@"
nonstop_check_built
labels_note

CAPS="$(video_caps)"
RETURN_NS="$(seconds_to_ns "$RETURN_AFTER")"

DESC="
  nonstopswitch name=video timeout=$((TIMEOUT_MS * 1000000)) return-after=$RETURN_NS
    ! $(clock_overlay) $(video_encode)
  videotestsrc is-live=true pattern=smpte ! $CAPS ! $(label PRIMARY) valve name=primary ! video.sink_0
  videotestsrc is-live=true pattern=ball ! $CAPS ! $(label BACKUP) video.sink_1
  $(ts_output)"

where_output
nonstop_run --duration "$DURATION" --cut "primary:$STALL:$EVERY" \
  --name sink_0=PRIMARY --name sink_1=BACKUP "$DESC"
