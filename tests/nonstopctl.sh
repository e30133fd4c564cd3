#!/usr/bin/env bash
# End to end: nonstopctl against a real nonstopd on a private D-Bus bus.
# status (table and --json with every property), switch (ActiveInput and
# Mode follow within 1 s; watch --json and watch see the InputSwitched
# signal), mode, the named errors of an unknown input and channel (exit 4),
# a drill that passes (exit 0, the report says so), an unreachable bus and
# a bus without nonstopd (exit 3), bad usage (exit 2). nonstopctl links
# no GStreamer.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor
CTL="$ROOT/target/release/nonstopctl"
CH=ctl-test # not a plain word: its object path is escaped (ctl_2dtest)

echo "-- no GStreamer in nonstopctl"
libs=$(ldd "$CTL") || fail "ldd $CTL failed"
if grep -i libgst <<<"$libs"; then fail "nonstopctl links GStreamer (above)"; fi
grep -q libc <<<"$libs" || fail "ldd $CTL shows no libraries at all: $libs"

private_bus

cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "$CH"
video = { width = 320, height = 240, framerate = 25 }
timeout = "500ms"
return_after = "2s"

[[channel.input]]
id = "primary"
uri = "test://ball?label=PRIMARY&tone=440"

[[channel.input]]
id = "backup"
uri = "test://smpte?label=BACKUP&tone=660"

[channel.encoder]
backend = "x264"
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$(free_port)"
TOML
log="$WORK/nonstopd.log"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --address "$addr" 2>"$log"
wait_log "$log" "D-Bus control published" 30 >/dev/null

# ctl CODE ARGS...: nonstopctl on the private bus (bounded); fails unless it
# exits CODE. Its stdout is in $WORK/out, its stderr in $WORK/err.
ctl() {
  local want=$1 rc=0
  shift
  timeout 120 "$CTL" --address "$addr" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  ((rc == want)) || {
    echo "--- stdout:" >&2
    cat "$WORK/out" >&2
    echo "--- stderr:" >&2
    cat "$WORK/err" >&2
    fail "nonstopctl $*: exit $rc, want $want"
  }
}
# prop NAME: a property of the channel, from `status CH --json`.
prop() {
  ctl 0 status "$CH" --json
  "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/out" "$1"
}
# until_prop NAME VALUE SECONDS: polls until the property has VALUE; prints
# how long it took (s).
until_prop() {
  local start deadline v
  start=$(now)
  deadline=$("$PY" -c "print($start + $3)")
  while :; do
    v=$(prop "$1")
    [[ $v == "$2" ]] && break
    "$PY" -c "import sys; sys.exit(0 if $(now) < $deadline else 1)" ||
      fail "$1 of $CH is \"$v\", not \"$2\" after $3 s"
    sleep 0.02
  done
  "$PY" -c "print(round($(now) - $start, 3))"
}
# until_json EXPR SECONDS: polls until the Python EXPR over c (the channel's
# `status CH --json` object) holds.
until_json() {
  local deadline=$(($(date +%s) + $2))
  until ctl 0 status "$CH" --json && "$PY" -c 'import json, sys; c = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$WORK/out" "$1"; do
    (($(date +%s) < deadline)) || fail "not within $2 s: $1"
    sleep 0.05
  done
}
# expect_err REGEX: stderr of the last ctl matches.
expect_err() { grep -q -E "$1" "$WORK/err" || fail "stderr \"$(cat "$WORK/err")\" does not match /$1/"; }

echo "-- status"
until_prop State on-air 30 >/dev/null
until_prop ActiveInput primary 10 >/dev/null
until_json 'all(o["state"] == "live" for o in c["Outputs"]) and all(e["state"] == "on-air" for e in c["Encoders"])' 20
ctl 0 status
sed 's/^/   | /' "$WORK/out"
grep -q -E "^$CH: on-air, mode auto, input primary" "$WORK/out" || fail "status does not show $CH on air with primary"
grep -q -E '^ +\* +primary +receiving ' "$WORK/out" || fail "status does not mark primary as the input on air"
grep -q -E '^ +backup +receiving ' "$WORK/out" || fail "status does not list the backup"
grep -q -E '^ +udp +live +[0-9.]+ (B|KiB|MiB|GiB) +[0-9]+ +udp://' "$WORK/out" || fail "status does not show the output live"
grep -q -E '^ +video\.primary +x264 +on-air' "$WORK/out" || fail "status does not show the encoder"
ctl 0 status --json
"$PY" - "$WORK/out" "$CH" <<'PY' || fail "status --json lacks fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d["Version"], str) and d["Version"], d
assert d["StartedAt"] > 1.5e15, d["StartedAt"]  # µs since the epoch
[c] = d["Channels"]
for k in ("Path", "Id", "State", "Mode", "ActiveInput", "Switches", "Inputs", "Outputs", "Encoders"):
    assert k in c, k
assert c["Id"] == sys.argv[2] and c["Path"].endswith("/channel/ctl_2dtest"), c["Path"]
assert (c["State"], c["Mode"], c["ActiveInput"]) == ("on-air", "auto", "primary"), c
assert [i["id"] for i in c["Inputs"]] == ["primary", "backup"], c["Inputs"]
for i in c["Inputs"]:
    assert set(i) == {"id", "uri", "state", "alarms", "last_seen", "restarts", "return_holdoff_ms"}, i
    assert i["return_holdoff_ms"] > 0, i
    assert i["state"] == "receiving" and i["last_seen"] > 0 and isinstance(i["alarms"], list), i
[o] = c["Outputs"]
assert set(o) == {"id", "uri", "state", "bytes", "restarts"} and o["state"] == "live" and o["bytes"] > 0, o
assert c["Encoders"] and set(c["Encoders"][0]) == {"id", "backend", "state"}, c["Encoders"]
print("   --json: Version %s, %d input(s), output %s %d bytes, encoder %s" % (
    d["Version"], len(c["Inputs"]), o["id"], o["bytes"], c["Encoders"][0]["backend"]))
PY

echo "-- switch, seen by watch"
spawn watch_json "$CTL" --address "$addr" watch --json >"$WORK/watch.json" 2>"$WORK/watch.err"
spawn watch_text "$CTL" --address "$addr" watch "$CH" >"$WORK/watch.txt" 2>"$WORK/watch.err2"
# Each prints the state it starts from once its subscription is in place.
wait_log "$WORK/watch.json" '"event":"Property","channel":"ctl-test","property":"ActiveInput","value":"primary"' 10 >/dev/null
wait_log "$WORK/watch.txt" " $CH ActiveInput=primary$" 10 >/dev/null
ctl 0 switch "$CH" backup
[[ ! -s $WORK/out && ! -s $WORK/err ]] || fail "switch printed something: $(cat "$WORK/out" "$WORK/err")"
took=$(until_prop ActiveInput backup 1)
within 0 "$took" 1 "switch returned → status shows ActiveInput backup (s)"
[[ $(prop Mode) == manual ]] || fail "Mode is $(prop Mode) after switch, not manual"
wait_log "$WORK/watch.json" '"event":"InputSwitched","channel":"ctl-test","from":"primary","to":"backup","reason":"manual"' 5 >/dev/null
wait_log "$WORK/watch.txt" "^[0-9-]+ [0-9:.]+ $CH switched primary -> backup \(manual\)$" 5 >/dev/null
wait_log "$WORK/watch.txt" " $CH Mode=manual$" 5 >/dev/null
"$PY" - "$WORK/watch.json" <<'PY' || fail "watch --json printed a line that is not a JSON object with time and event"
import json, sys
n = 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    assert isinstance(e, dict) and "time" in e and "event" in e, line
    n += 1
print("   watch --json: %d lines, all objects with time and event" % n)
PY
grep -E "switched" "$WORK/watch.txt" | sed 's/^/   | /'

echo "-- mode auto: back to the primary"
ctl 0 mode "$CH" auto
until_prop Mode auto 2 >/dev/null
until_prop ActiveInput primary 10 >/dev/null
wait_log "$WORK/watch.json" '"event":"InputSwitched","channel":"ctl-test","from":"backup","to":"primary"' 5 >/dev/null

echo "-- watch ends on SIGINT with exit 0"
for w in "$watch_json" "$watch_text"; do
  kill -INT "$w"
  rc=0
  wait_exit "$w" 5 || rc=$?
  ((rc == 0)) || fail "watch exited with $rc after SIGINT: $(cat "$WORK/watch.err" "$WORK/watch.err2")"
done

echo "-- refusals: exit 4 with the error's name"
ctl 4 switch "$CH" nope
expect_err '^nonstopctl: NoSuchInput: .*"nope"'
echo "   $(cat "$WORK/err")"
ctl 4 status NOPE
expect_err '^nonstopctl: NoSuchChannel: .*NOPE'
echo "   $(cat "$WORK/err")"
ctl 4 restart "$CH" output nope
expect_err '^nonstopctl: NoSuchOutput: '
ctl 4 drill "$CH" input-flood primary --for 1s
expect_err '^nonstopctl: InvalidArgument: .*input-flood'

echo "-- drill"
ctl 0 drill "$CH" input-stall primary --for 2s
sed 's/^/   | /' "$WORK/out"
grep -q -E '^passed: +true$' "$WORK/out" || fail "the drill report does not say it passed"
grep -q -E '^kind: +input-stall$' "$WORK/out" || fail "the drill report lacks the kind"
for k in target detected_ms switched_ms output_gap_ms returned_ms reason; do
  grep -q -E "^$k:" "$WORK/out" || fail "the drill report lacks $k"
done
until_prop ActiveInput primary 10 >/dev/null

echo "-- unreachable bus: exit 3"
ctl 3 --address "unix:path=$WORK/no-such-bus" status
expect_err '^nonstopctl: cannot connect to '
echo "   $(cat "$WORK/err")"

echo "-- bad usage: exit 2 with the usage"
for args in "frobnicate" "switch $CH" "mode $CH sideways" "restart $CH encoder video" \
  "drill $CH input-stall primary --for soon" "status --bogus" "status a b" ""; do
  # shellcheck disable=SC2086 # the words are the arguments
  ctl 2 $args
  expect_err '^usage: nonstopctl '
done
ctl 0 --help
grep -q "^Exit codes:" "$WORK/out" || fail "--help has no exit codes"

echo "-- nonstopd stopped: exit 3"
kill -TERM "$daemon"
rc=0
wait_exit "$daemon" 15 || rc=$?
((rc == 0)) || fail "nonstopd exited with $rc"
ctl 3 status
expect_err '^nonstopctl: nonstopd is not running'
echo "   $(cat "$WORK/err")"
echo "PASS nonstopctl"
