#!/usr/bin/env bash
# A slate as the last resort: sink_0 = PRIMARY, sink_1 = BACKUP, sink_2 = a
# still image (imagefreeze of a PNG), the lowest priority and always healthy.
# The primary stops, then the backup too: the slate goes on air instead of
# repeated or black frames, and the inputs come back in priority order.
set -euo pipefail
# shellcheck source=pipelines/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

IMAGE=""
RETURN_AFTER=2

usage() {
  cat <<EOF
Usage: ${0##*/} [options]

Every 20 s (running time): the primary stops from 5 s to 12 s, the backup
from 7 s to 10 s. So: primary -> backup (5.5 s) -> slate (7.5 s) -> backup
-> primary, each return after --return-after seconds of good input.

  --image PATH        slate picture (PNG or JPEG; scaled to --size). Default:
                      a generated "PLEASE STAND BY" card
  --return-after SEC  hold-off before returning to a better input (default $RETURN_AFTER)
EOF
  nonstop_common_usage
}

nonstop_option() {
  case "$1" in
    --image) IMAGE="${2:?--image needs a path}"; return 2 ;;
  esac
  nonstop_schedule_option "$@"
}

nonstop_parse_common "$@"
nonstop_check_built
labels_note

if [[ -z $IMAGE ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  IMAGE="$tmp/slate.png"
  gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=solid-color foreground-color=0xff1f3a5f \
    ! "video/x-raw,width=$WIDTH,height=$HEIGHT" ! $(label "PLEASE STAND BY" center) \
    videoconvert ! pngenc ! filesink location="$IMAGE"
fi
[[ -r $IMAGE ]] || nonstop_die "cannot read slate image $IMAGE"

CAPS="$(video_caps)"
RETURN_NS="$(seconds_to_ns "$RETURN_AFTER")"

# The slate is converted once, then imagefreeze repeats it as a live stream.
DESC="
  nonstopswitch name=video return-after=$RETURN_NS ! $(clock_overlay) $(video_encode)
  videotestsrc is-live=true pattern=smpte ! $CAPS ! $(label PRIMARY) valve name=primary ! video.sink_0
  videotestsrc is-live=true pattern=ball ! $CAPS ! $(label BACKUP) valve name=backup ! video.sink_1
  filesrc location=\"$IMAGE\" ! decodebin ! videoconvert ! videoscale
    ! video/x-raw,format=I420,width=$WIDTH,height=$HEIGHT,pixel-aspect-ratio=1/1,colorimetry=bt709
    ! imagefreeze is-live=true ! $CAPS ! video.sink_2
  $(ts_output)"

where_output
nonstop_run --duration "$DURATION" --cut "primary:7:20:5" --cut "backup:3:20:7" \
  --name sink_0=PRIMARY --name sink_1=BACKUP --name sink_2=SLATE "$DESC"
