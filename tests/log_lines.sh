#!/usr/bin/env bash
# The log as docs/operations.md promises it: one event, one line, each line
# with its time and level; a pipeline that cannot start is reported once,
# with its real cause in the same record as the restart (issue 18, 4). The
# cause here: a UDP input whose port another process holds.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor

port=$(free_port)
srtport=$(free_port)
# Another process holds both ports (plain bind, no SO_REUSEADDR).
spawn holder "$PY" -c "import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', $port))
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t.bind(('127.0.0.1', $srtport))
time.sleep(120)"
sleep 0.3
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "logs"
video = { width = 320, height = 240, framerate = 25 }
backoff = { initial = "500ms", max = "1s" }

[[channel.input]]
id = "busy"
uri = "udp://127.0.0.1:$port"

[[channel.input]]
id = "srtbusy"
uri = "srt://127.0.0.1:$srtport?mode=listener"

[[channel.input]]
id = "slate"
uri = "slate://colour/black"

[channel.encoder]
preset = "ultrafast"
TOML
log="$WORK/nonstopd.log"
spawn daemon bash -c "exec '$NONSTOPD' --config '$WORK/ch.toml' 2>'$log'"
wait_log "$log" "input .*busy.*restarting|restarting.*input=busy" 15 >/dev/null ||
  { cat "$log" >&2; fail "no restart of the busy input within 15 s"; }
sleep 2 # a few more attempts
kill -TERM "$daemon"
wait_exit "$daemon" 2>/dev/null || true

# Every line is an event: time, level, message.
bad=$(grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z +(TRACE|DEBUG|INFO|WARN|ERROR) ' "$log" || true)
[[ -z $bad ]] || { cat "$log" >&2; fail "lines that are not a whole event: $bad"; }
# The restart carries the cause; nothing points to an error "above".
restart=$(grep -E 'busy' "$log" | grep -E 'restarting|input lost|not receiving' | head -1)
grep -q "Address already in use" <<<"$restart" ||
  { cat "$log" >&2; fail "the restart record does not say why: $restart"; }
if grep -q "see the error above\|failed to post a proper error message" "$log"; then
  cat "$log" >&2
  fail "a start failure points elsewhere, or GStreamer's generic error is logged"
fi
# libsrt says only "unable to create/configure SRT socket": nonstopd adds
# that the port is taken.
srt_restart=$(grep -E 'input=srtbusy' "$log" | grep -E 'restarting|not receiving' | head -1)
grep -q "127.0.0.1:$srtport is in use" <<<"$srt_restart" ||
  { cat "$log" >&2; fail "the SRT restart does not say the port is in use: $srt_restart"; }
n=$(grep -c 'input=busy' "$log" || true)
echo "   $n lines about the busy input, each a whole event; the restart says: ${restart#*Z }"
echo "PASS log_lines"
