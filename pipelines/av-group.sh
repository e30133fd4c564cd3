#!/usr/bin/env bash
# One channel with picture and sound: two nonstopswitch elements (video and
# audio) in the same group. Each input's video and audio use the same sink_N
# index. Only the primary's *video* stops; the group makes the audio switch
# with it, at the same running time, so picture and sound always come from
# the same input.
set -euo pipefail
# shellcheck source=pipelines/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STALL=3
EVERY=10
RETURN_AFTER=2

usage() {
  cat <<EOF
Usage: ${0##*/} [options]

sink_0 = PRIMARY (SMPTE bars, 440 Hz), sink_1 = BACKUP (ball, 880 Hz), both
switches in group "ch1". The primary's video stops for --stall seconds every
--every seconds; video and audio fail over and return together.

Stall pattern:
  --stall SEC         how long the primary's video stops (default $STALL)
  --every SEC         period of the stalls (default $EVERY)
  --return-after SEC  hold-off before returning to the primary (default $RETURN_AFTER)
EOF
  nonstop_common_usage audio
}

nonstop_option() { nonstop_schedule_option "$@"; }

nonstop_parse_common "$@"
nonstop_check_built
labels_note

VCAPS="$(video_caps)"
ACAPS="$(audio_caps)"
RETURN_NS="$(seconds_to_ns "$RETURN_AFTER")"
# Members of a group should share these settings.
SETTINGS="group=ch1 return-after=$RETURN_NS"

DESC="
  nonstopswitch name=video $SETTINGS ! $(clock_overlay) $(video_encode)
  nonstopswitch name=audio $SETTINGS ! $(audio_encode)
  videotestsrc is-live=true pattern=smpte ! $VCAPS ! $(label PRIMARY) valve name=primary-video ! video.sink_0
  audiotestsrc is-live=true freq=440 volume=0.3 ! $ACAPS ! audio.sink_0
  videotestsrc is-live=true pattern=ball ! $VCAPS ! $(label BACKUP) video.sink_1
  audiotestsrc is-live=true freq=880 volume=0.3 ! $ACAPS ! audio.sink_1
  $(ts_output)"

where_output
nonstop_run --duration "$DURATION" --cut "primary-video:$STALL:$EVERY" \
  --name sink_0=PRIMARY --name sink_1=BACKUP "$DESC"
