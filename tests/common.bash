# Shared helpers for the end-to-end tests (sourced).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# ts_steps FILE STREAM(v|a): prints "count min_step max_step" of the packet
# PTS of one stream, in seconds.
ts_steps() {
  ffprobe -v error -select_streams "$2" -show_entries packet=pts_time -of csv=p=0 "$1" |
    tr -d ',' | python3 -c '
import sys
t = sorted(float(x) for x in sys.stdin if x.strip())
d = [b - a for a, b in zip(t, t[1:])]
print(len(t), "%.6f" % min(d), "%.6f" % max(d))'
}

# expect_continuous FILE STREAM STEP MIN_COUNT: every PTS step equals STEP
# (within 1 ms) and there are at least MIN_COUNT packets.
expect_continuous() {
  local file=$1 stream=$2 step=$3 min_count=$4 count lo hi
  read -r count lo hi < <(ts_steps "$file" "$stream")
  echo "   $stream: $count packets, PTS step $lo .. $hi s (want $step)"
  python3 -c "import sys; sys.exit(0 if abs($lo-$step) < 0.001 and abs($hi-$step) < 0.001 else 1)" ||
    fail "$stream stream of $file is not continuous: steps $lo .. $hi, want $step"
  ((count >= min_count)) || fail "$stream stream of $file has $count packets, want >= $min_count"
}
