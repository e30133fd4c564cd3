#!/usr/bin/env bash
# The fleet's chaos harness (docs/reliability.md, "The fleet"): the world of
# tests/fleet.sh (tests/tools/fleet/netns.bash: 3 etcd members, box-a and
# box-b running nonstopd with channel "news" active-passive, a sender, a
# receiver, all in network namespaces nsf-PID-*) and its faults, drawn from a
# seed, each judged at the receiver with tests/fleet.sh's rules
# (tests/tools/fleet/judge.py):
#   leader-kill       kill -9 the leader, at a drawn phase of its lease renewal;
#                     restart it later (it must not take the channel back)
#   leader-stop       SIGSTOP the leader for more than TTL + 1 s, at a phase
#   leader-cut-off    the leader's veth down for a while, at a phase
#   drain             drain the leader through etcd, undrain it later
#   etcd-member-kill  kill -9 etcd's raft leader or a follower, restart it later
#   leader-cut-etcd   the leader cut from every etcd member (blackhole routes)
#   etcd-down         every etcd member killed (or SIGSTOPped) for a while
#   rolling-restart   SIGTERM and restart both boxes, leader or standby first
#   standby-kill      kill -9 the standby, restart it later
# A leader death (kill, stop, cut-off) must bring the standby on air, on a
# keyframe, within TTL + 0.5 s + a keyframe interval (3.5 s); a drain or
# SIGTERM within 1.5 s; anything else must change nothing on air (no gap over
# 0.5 s, one source, no continuity break); two boxes never send at once.
#
#   tests/chaos/fleet.sh [--quick] [--seed N] [--only IDS] [--out DIR]
#       one fault of each kind (9), about 3 minutes
#   tests/chaos/fleet.sh --soak DURATION [--seed N] [--out DIR]
#       random faults, each after a random rest, until DURATION (90s, 30m, 4h)
#   ... --schedule-only     print the seed's schedule and exit
# (scripts/chaos --fleet ... builds nonstopd and runs this.)
#
# A failed fault is recorded (seed, index, reasons, the capture and both
# boxes' log lines since it began, in DIR/faults/NNN/), the world is put back
# (a box restarted, etcd restarted, the links and routes restored, or
# everything rebuilt) and the run goes on. DIR/report.md is rewritten after
# every fault and at the end; the exit status is 1 when anything failed.
# Needs root (network namespaces) and etcd 3.4.
source "$(dirname "$0")/../common.bash"

usage() {
  sed -n '/^#   tests/,/^# (scripts/p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

MODE=quick SOAK_TEXT="" SEED="" ONLY="" OUT="" SCHEDULE_ONLY=0
while (($#)); do
  case $1 in
    --fleet) ;;
    --quick) MODE=quick ;;
    --soak)
      MODE=soak
      SOAK_TEXT=${2:?--soak needs a duration}
      shift
      ;;
    --seed)
      SEED=${2:?--seed needs a number}
      shift
      ;;
    --only)
      ONLY=${2:?--only needs fault ids}
      shift
      ;;
    --out)
      OUT=${2:?--out needs a directory}
      shift
      ;;
    --schedule-only) SCHEDULE_ONLY=1 ;;
    -h | --help) usage ;;
    *)
      echo "fleet chaos: unknown argument '$1'" >&2
      usage
      ;;
  esac
  shift
done
[[ -z $SEED || $SEED =~ ^[0-9]+$ ]] || fail "--seed takes a number, not '$SEED'"
[[ -z $ONLY || $ONLY =~ ^[0-9]+(,[0-9]+)*$ ]] || fail "--only takes fault ids (e.g. 3,7), not '$ONLY'"
LENGTH=0
if [[ $MODE == soak ]]; then
  LENGTH=$("$PY" -c 'import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", sys.argv[1].strip())
print(int(float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]) if m else "")' "$SOAK_TEXT")
  [[ -n $LENGTH ]] || fail "--soak takes a duration (90s, 30m, 4h), not '$SOAK_TEXT'"
fi
[[ -n $SEED ]] || SEED=$("$PY" -c 'import random; print(random.SystemRandom().randrange(1, 1 << 31))')

HERE="$ROOT/tests/chaos"
FLEET_PY="$HERE/fleet.py"
fpy() { "$PY" "$FLEET_PY" "$@"; }
REPLAY="scripts/chaos --fleet $([[ $MODE == soak ]] && echo "--soak $SOAK_TEXT" || echo --quick) --seed $SEED"
ONLY_ARGS=()
[[ -n $ONLY ]] && ONLY_ARGS=(--only "$ONLY")
SCHED_JSON=$(fpy schedule --seed "$SEED" --mode "$MODE" --length "$LENGTH" "${ONLY_ARGS[@]}") ||
  fail "no schedule"
echo "fleet chaos: seed $SEED ($MODE${SOAK_TEXT:+ $SOAK_TEXT}); replay with: $REPLAY${ONLY:+ --only $ONLY}"
if ((SCHEDULE_ONLY)); then
  echo "$SCHED_JSON"
  exit 0
fi

if (($(id -u) != 0)); then fail "the fleet's chaos needs root (network namespaces)"; fi
command -v etcd >/dev/null || fail "no etcd (apt-get install etcd-server etcd-client; scripts/bootstrap does)"
[[ -x $NONSTOPD ]] || fail "no $NONSTOPD (cargo build --release -p nonstop-supervisor; scripts/chaos does)"

[[ -n $OUT ]] || OUT=$(mktemp -d -t nonstop-fleet-chaos.XXXXXX)
mkdir -p "$OUT/faults"
OUT=$(cd "$OUT" && pwd)
# A copy of nonstopd: a rebuild during a long run must not change what a
# restarted box runs.
cp -p "$NONSTOPD" "$OUT/nonstopd"
NONSTOPD="$OUT/nonstopd"
rm -f "$OUT/faults.jsonl" "$OUT/run-fails.txt" "$OUT/report.md" "$OUT/run.log"
# Everything this run prints also goes to DIR/run.log.
echo "fleet chaos: seed $SEED ($MODE${SOAK_TEXT:+ $SOAK_TEXT}); replay with: $REPLAY${ONLY:+ --only $ONLY}" >"$OUT/run.log"
exec > >(tee -a "$OUT/run.log") 2>&1
echo "$SCHED_JSON" >"$OUT/schedule.json"
NSF_DIR="$OUT/world"
source "$ROOT/tests/tools/fleet/netns.bash"
rm -rf "$NSF_DIR"
mkdir -p "$NSF_DIR"
JUDGE="$ROOT/tests/tools/fleet/judge.py"
METRICS_PORT=9464 # each box's own loopback, in its namespace
mapfile -t IDS < <("$PY" -c 'import json, sys; print("\n".join(str(f["id"]) for f in json.load(open(sys.argv[1]))))' "$OUT/schedule.json")
echo "fleet chaos: ${#IDS[@]} faults$([[ $MODE == soak ]] && echo " drawn (as many as $SOAK_TEXT allows)"); logs and report in $OUT"

# The bounds (tests/fleet.sh's; fleet.py has the same for the report).
TAKEOVER=3.5 HANDOVER=1.5 ON_AIR_GAP=0.5 SWITCHED_GAP=1.0

fpy run --out "$OUT" "mode=$MODE" "seed=$SEED" "length=$LENGTH" "length_text=$SOAK_TEXT" \
  "only=$ONLY" "started=$(date +%s.%N)" "replay=$REPLAY" \
  "command=scripts/chaos --fleet $([[ $MODE == soak ]] && echo "--soak $SOAK_TEXT" || echo --quick) --seed $SEED${ONLY:+ --only $ONLY}" \
  "machine=$(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg) at the start" \
  "etcd_flags=$ETCD_FLAGS" "rebuilt=0" \
  "build=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet HEAD -- supervisor plugins 2>/dev/null || echo '+changes'), nonstopd built $(date -r "$NONSTOPD" '+%F %T')"

# --- failures ------------------------------------------------------------------
# Inside a fault (a subshell), `fail` notes its reason in the fault's
# fails.txt and ends the fault's steps; `problem` notes one and goes on.
FAULT_FAILS=""
fail() {
  echo "FAIL: $*" >&2
  if [[ -n $FAULT_FAILS ]]; then echo "$*" >>"$FAULT_FAILS"; fi
  exit 1
}
problem() {
  echo "   FAIL: $*" >&2
  if [[ -n $FAULT_FAILS ]]; then echo "$*" >>"$FAULT_FAILS"; else echo "$*" >>"$OUT/run-fails.txt"; fi
}
info() { echo "$1=$2" >>"$FAULT_DIR/info"; }

RUN_ENDED=0
on_exit() {
  local rc=$?
  set +e
  trap - EXIT TERM INT
  topo_down
  if ((!RUN_ENDED)) && [[ -e $OUT/run.json ]]; then
    fpy run --out "$OUT" "ended=$(date +%s.%N)" "stopped=the run stopped early (status $rc, see run.log)" >/dev/null
    fpy report --out "$OUT" --final >/dev/null
    echo "fleet chaos: stopped early (status $rc); report $OUT/report.md" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# --- helpers (the shared ones are in netns.bash) ----------------------------------

alive() { # NAME: the process started by ns_spawn runs (stopped counts)
  local pid
  pid=$(cat "$NSF_DIR/$1.pid" 2>/dev/null) || return 1
  [[ -e /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# start_box BOX: netns.bash's box_start, but with the metrics server on the
# box's own loopback (the kill's phase is read from it), and the byte offset
# of this run's log noted (this_run reads from there, not the whole log).
start_box() {
  local x=$1
  [[ -e $NSF_DIR/box-$x.toml ]] || box_config "$x"
  touch "$NSF_DIR/box-$x.log"
  stat -c %s "$NSF_DIR/box-$x.log" >"$NSF_DIR/box-$x.off"
  echo "=== start $(date +%T.%N)" >>"$NSF_DIR/box-$x.log"
  ns_spawn "box-$x" "$x" env RUST_LOG=info MALLOC_ARENA_MAX=2 "$NONSTOPD" --config "$NSF_DIR/box-$x.toml" \
    --no-dbus --metrics "127.0.0.1:$METRICS_PORT"
}

# this_run BOX: its log since it was last started.
this_run() { tail -c +"$(($(cat "$NSF_DIR/box-$1.off") + 1))" "$(box_log "$1")"; }
expect_role() {
  [[ $(role "$1") == "$2" ]] || problem "$3: box-$1 is $(role "$1"), want $2"
}

# verdict NAME FROM TO EXPECT MAX_GAP [OLD_BOX NEW_BOX]: the receiver's
# judgement (judge.py's rules), its figures recorded; a broken rule is noted
# and the fault goes on (its clean-up steps still run).
verdict() {
  local ids=() rc=0
  [[ -n ${6:-} ]] && ids=(--old "${NSF_IP[$6]}" --new "${NSF_IP[${7:-$6}]}")
  fpy check "$CAP" --record "$FAULT_DIR/verdicts.jsonl" --name "$1" --from "$2" --to "$3" --expect "$4" \
    --max-gap "$5" --on-air-gap "$SWITCHED_GAP" "${ids[@]}" "${@:8}" | sed 's/^/   /' || rc=$?
  return 0
}

# at_phase BOX PHASE ACTION...: strikes PHASE s after one of BOX's lease
# renewals (fleet.py phase, in BOX's namespace); sets T0, PHASE_MS, LEFT_MS.
at_phase() {
  local x=$1 ph=$2 out
  shift 2
  out=$(in_ns "$x" "$PY" "$FLEET_PY" phase --port "$METRICS_PORT" --phase "$ph" "$@") || fail "the phase timer failed"
  T0=$(sed -n 's/^t0=//p' <<<"$out")
  PHASE_MS=$(sed -n 's/^phase_ms=//p' <<<"$out")
  LEFT_MS=$(sed -n 's/^left_ms=//p' <<<"$out")
  info phase_ms "$PHASE_MS"
  info left_ms "$LEFT_MS"
  echo "   struck ${PHASE_MS} ms after a renewal (fence deadline in ${LEFT_MS} ms)"
}

# rotate_capture FILE: the receiver records into FILE from now on (a file per
# fault: judging reads the whole file).
rotate_capture() {
  if alive rx; then
    signal KILL rx
    gone rx 10
  fi
  CAP=$1
  ns_spawn rx rx "$PY" "$JUDGE" record 6000 "$CAP"
}

# --- the world ------------------------------------------------------------------------

world_up() {
  reap_stale
  topo_up
  local m
  for m in "${MEMBERS[@]}"; do etcd_start "$m"; done
  etcd_healthy 30
  rotate_capture "$NSF_DIR/rx-start.cap"
  ns_spawn tx tx "$TS_SENDER" ball 320x180 multiudpsink clients="${NSF_IP[a]}:5000,${NSF_IP[b]}:5000"
  start_box a
  start_box b
  steady 60
  echo "   box-$LEADER leads, box-$STANDBY stands by"
}

world_down() {
  topo_down
  rm -rf "$NSF_DIR"/e?.data
}

# recover: puts the world back after a failed fault: links and routes
# restored, stopped processes continued, dead ones restarted, drains
# removed; then a steady state.
recover() {
  local x m
  for x in a b; do
    link "$x" up 2>/dev/null || true
    for m in "${MEMBERS[@]}"; do ip -n "$NSF-$x" route del blackhole "${NSF_IP[$m]}/32" 2>/dev/null || true; done
  done
  for m in "${MEMBERS[@]}"; do
    if alive "$m"; then signal CONT "$m" || true; else etcd_start "$m"; fi
  done
  etcd_healthy 30
  ctl del --prefix /nonstop/drain/ >/dev/null || true
  alive tx || ns_spawn tx tx "$TS_SENDER" ball 320x180 multiudpsink clients="${NSF_IP[a]}:5000,${NSF_IP[b]}:5000"
  for x in a b; do
    if alive "box-$x"; then signal CONT "box-$x" || true; else start_box "$x"; fi
  done
  steady 45
}

# --- the faults (each runs in a subshell: `fail` ends its steps) ---------------------------

fault_leader-kill() {
  local old=$LEADER new=$STANDBY from how
  from=$(log_lines "$new")
  at_phase "$old" "$p_phase" --signal KILL --pid "$(pid_of "box-$old")"
  how=$(takeover "$new" "$from")
  echo "   box-$new took over ($how); box-$old restarts in $p_restart_after s"
  sleep "$p_restart_after"
  start_box "$old"
  wait_role "$old" standby 30
  sleep 5 # no flapping: the receiver must see box-$new alone
  ! this_run "$old" | grep -q "takes channel news over" || problem "the restarted box-$old took the channel back"
  verdict "kill -9 leader box-$old" "$T0" "$(mark)" switch "$TAKEOVER" "$old" "$new"
  expect_role "$old" standby "after its restart"
}

fault_leader-stop() {
  local old=$LEADER new=$STANDBY from from_old how
  from=$(log_lines "$new")
  from_old=$(log_lines "$old")
  at_phase "$old" "$p_phase" --signal STOP --pid "$(pid_of "box-$old")"
  how=$(takeover "$new" "$from") || { signal CONT "box-$old"; exit 1; }
  sleep_until "$(after "$T0" "$p_dur")"
  signal CONT "box-$old"
  echo "   box-$new took over ($how); box-$old continued after $p_dur s"
  wait_log "$(box_log "$old")" 'fleet role.*role="?standby' 15 "$from_old" >/dev/null
  sleep 3
  verdict "SIGSTOP leader box-$old ${p_dur}s" "$T0" "$(mark)" switch "$TAKEOVER" "$old" "$new"
  expect_role "$old" standby "after SIGCONT"
}

fault_leader-cut-off() {
  local old=$LEADER new=$STANDBY from from_old how
  from=$(log_lines "$new")
  from_old=$(log_lines "$old")
  at_phase "$old" "$p_phase" -- ip -n "$NSF-sw" link set "v-$old" down
  how=$(takeover "$new" "$from") || { link "$old" up; exit 1; }
  sleep_until "$(after "$T0" "$p_dur")"
  link "$old" up
  echo "   box-$new took over ($how); box-$old's link is back after $p_dur s"
  wait_log "$(box_log "$old")" 'fleet role.*role="?standby' 15 "$from_old" >/dev/null
  wait_log "$(box_log "$old")" 'fleet: lease granted' 15 "$from_old" >/dev/null
  sleep 3
  verdict "leader box-$old cut off ${p_dur}s" "$T0" "$(mark)" switch "$TAKEOVER" "$old" "$new"
  expect_role "$old" standby "after its link came back"
}

fault_drain() {
  local old=$LEADER new=$STANDBY from how t0
  from=$(log_lines "$new")
  t0=$(mark)
  ctl put "/nonstop/drain/box-$old" 1 >/dev/null || fail "etcdctl put drain failed"
  how=$(takeover "$new" "$from") || { ctl del "/nonstop/drain/box-$old" >/dev/null; exit 1; }
  sleep "$p_hold"
  verdict "drain leader box-$old" "$t0" "$(mark)" switch "$HANDOVER" "$old" "$new" --seamless
  t0=$(mark)
  ctl del "/nonstop/drain/box-$old" >/dev/null || fail "etcdctl del drain failed"
  sleep 5
  verdict "undrain box-$old" "$t0" "$(mark)" same "$ON_AIR_GAP" "$new"
  expect_role "$new" active "after the undrain"
  expect_role "$old" standby "after the undrain"
}

fault_etcd-member-kill() {
  local l m t0
  l=$(etcd_leader)
  [[ -n $l ]] || fail "no etcd raft leader"
  m=$l
  if [[ $p_member == follower ]]; then
    mapfile -t fs < <(printf '%s\n' "${MEMBERS[@]}" | grep -vx "$l")
    m=${fs[$p_follower]}
  fi
  info member "$m ($p_member)"
  t0=$(mark)
  signal KILL "$m"
  sleep "$p_dur"
  etcd_start "$m"
  etcd_healthy 20
  sleep 1
  verdict "kill -9 etcd $p_member $m ${p_dur}s" "$t0" "$(mark)" same "$ON_AIR_GAP" "$LEADER"
  expect_role "$LEADER" active "after etcd $m came back"
}

fault_leader-cut-etcd() {
  local t0
  t0=$(mark)
  cut_etcd "$LEADER" on
  sleep "$p_dur"
  cut_etcd "$LEADER" off
  sleep 3
  verdict "leader box-$LEADER cut from etcd ${p_dur}s" "$t0" "$(mark)" same "$ON_AIR_GAP" "$LEADER"
  expect_role "$LEADER" active "after it reached etcd again"
}

fault_etcd-down() {
  local t0 m
  t0=$(mark)
  if [[ $p_how == stop ]]; then
    for m in "${MEMBERS[@]}"; do signal STOP "$m"; done
    sleep "$p_dur"
    for m in "${MEMBERS[@]}"; do signal CONT "$m"; done
  else
    for m in "${MEMBERS[@]}"; do signal KILL "$m"; done
    sleep "$p_dur"
    for m in "${MEMBERS[@]}"; do etcd_start "$m"; done
  fi
  etcd_healthy 20
  sleep 3
  verdict "all etcd down ($p_how) ${p_dur}s" "$t0" "$(mark)" same "$ON_AIR_GAP" "$LEADER"
  expect_role "$LEADER" active "after etcd came back"
}

fault_rolling-restart() {
  local order x led from t0 n=0
  if [[ $p_first == leader ]]; then order=("$LEADER" "$STANDBY"); else order=("$STANDBY" "$LEADER"); fi
  for x in "${order[@]}"; do
    n=$((n + 1))
    ((n == 1)) || sleep "$p_pause"
    led=$(leader_node)
    from=$(log_lines "$x")
    t0=$(mark)
    signal TERM "box-$x"
    gone "box-$x" 10
    tail -n +"$from" "$(box_log "$x")" | grep -q "fleet: left (lease revoked)" ||
      problem "box-$x did not revoke its lease at SIGTERM"
    ! tail -n +"$from" "$(box_log "$x")" | grep -q "output did not finish" ||
      problem "box-$x: an output did not finish at SIGTERM"
    start_box "$x"
    wait_role "$x" standby 30
    sleep 1
    if [[ $led == "box-$x" ]]; then
      verdict "SIGTERM box-$x (leader)" "$t0" "$(mark)" switch "$HANDOVER" "$x" "$(other "$x")"
    else
      verdict "SIGTERM box-$x (standby)" "$t0" "$(mark)" same "$HANDOVER" "$(other "$x")"
    fi
  done
}

fault_standby-kill() {
  local t0 s=$STANDBY
  t0=$(mark)
  signal KILL "box-$s"
  sleep "$p_restart_after"
  start_box "$s"
  wait_role "$s" standby 30
  sleep 2
  ! this_run "$s" | grep -q "takes channel news over" || problem "the restarted box-$s took the channel"
  verdict "kill -9 standby box-$s" "$t0" "$(mark)" same "$ON_AIR_GAP" "$LEADER"
}

# --- the run ------------------------------------------------------------------------------

# evidence DIR: both boxes' log lines since the fault began (byte offsets
# noted in DIR/offsets), and the etcd members' last lines.
note_offsets() {
  local x
  for x in a b; do echo "$x $(stat -c %s "$NSF_DIR/box-$x.log" 2>/dev/null || echo 0)"; done >"$1/offsets"
}
evidence() {
  local d=$1 x off
  while read -r x off; do
    tail -c +"$((off + 1))" "$NSF_DIR/box-$x.log" 2>/dev/null | grep -vE 'encoder backend|open file limit' \
      >"$d/box-$x.log" || true
  done <"$d/offsets"
  for x in "${MEMBERS[@]}"; do tail -n 30 "$NSF_DIR/$x.log" >"$d/$x.log" 2>/dev/null || true; done
}

REBUILT=0
rebuild() {
  echo "-- rebuilding the world"
  REBUILT=$((REBUILT + 1))
  fpy run --out "$OUT" "rebuilt=$REBUILT" >/dev/null
  world_down
  local rc=0
  set +e
  (
    set -e
    world_up
  )
  rc=$?
  set -e
  return $rc
}

echo "-- the world: $NSF-*: 3 etcd members, 2 boxes, a sender, a receiver"
started=$SECONDS
set +e
(
  set -e
  world_up
)
rc=$?
set -e
if ((rc != 0)); then
  echo "the world did not come up" >>"$OUT/run-fails.txt"
  fail "the world did not come up (logs in $NSF_DIR)"
fi
echo "   up in $((SECONDS - started)) s"
fpy run --out "$OUT" "faults_from=$(date +%s.%N)" >/dev/null
faults_from=$SECONDS
done_n=0
for id in "${IDS[@]}"; do
  if [[ $MODE == soak ]] && ((SECONDS - faults_from >= LENGTH)); then break; fi
  unset -v "${!p_@}"
  eval "$(fpy get "$OUT/schedule.json" "$id")"
  FAULT_DIR=$(printf '%s/faults/%03d' "$OUT" "$id")
  rm -rf "$FAULT_DIR"
  mkdir -p "$FAULT_DIR"
  if [[ $MODE == soak ]]; then sleep "$rest"; fi
  echo "-- fault $id ($((done_n + 1))$([[ $MODE == quick ]] && echo "/${#IDS[@]}"), $(((SECONDS - faults_from) / 60)) min): $kind ($describe)"
  rotate_capture "$FAULT_DIR/rx.cap"
  note_offsets "$FAULT_DIR"
  set +e
  (
    set -e
    FAULT_FAILS="$FAULT_DIR/fails.txt"
    info started "$(date +%s.%N)"
    steady 30
    info leader "box-$LEADER"
    echo "   box-$LEADER leads, box-$STANDBY stands by"
    "fault_$kind"
  )
  rc=$?
  set -e
  if ((rc != 0)) || [[ -s $FAULT_DIR/fails.txt ]] || grep -q '"broken": \[[^]]' "$FAULT_DIR/verdicts.jsonl" 2>/dev/null; then
    evidence "$FAULT_DIR"
    ok=0
  else
    ok=1
  fi
  fpy end --schedule "$OUT/schedule.json" --dir "$FAULT_DIR" --id "$id" --rc "$rc" --log "$OUT/faults.jsonl"
  if ((ok)); then
    rm -f "$FAULT_DIR/rx.cap"
  else
    echo "   evidence in $FAULT_DIR; putting the world back"
    set +e
    (
      set -e
      recover
    )
    rrc=$?
    set -e
    if ((rrc != 0)) && ! rebuild; then
      echo "the world could not be rebuilt after fault $id: the run stopped" >>"$OUT/run-fails.txt"
      break
    fi
  fi
  done_n=$((done_n + 1))
  fpy report --out "$OUT" >/dev/null || true
done

# The boxes still stop cleanly: SIGTERM, exit within 10 s, the lease revoked.
set +e
(
  set -e
  FAULT_FAILS="$OUT/run-fails.txt"
  for x in a b; do
    alive "box-$x" || continue
    from=$(log_lines "$x")
    signal TERM "box-$x"
    gone "box-$x" 10
    tail -n +"$from" "$(box_log "$x")" | grep -q "fleet: left (lease revoked)" ||
      problem "at the end: box-$x did not revoke its lease at SIGTERM"
    ! tail -n +"$from" "$(box_log "$x")" | grep -q "output did not finish" ||
      problem "at the end: box-$x ($(role "$x")): an output did not finish at SIGTERM"
  done
  if grep -h "panicked" "$NSF_DIR"/box-?.log; then problem "a box panicked (see its log)"; fi
)
set -e
RUN_ENDED=1
fpy run --out "$OUT" "ended=$(date +%s.%N)" >/dev/null
rc=0
fpy report --out "$OUT" --final >/dev/null || rc=1
echo "-- $done_n faults in $(((SECONDS - faults_from) / 60)) min $(((SECONDS - faults_from) % 60)) s"
sed -n '/^## By kind/,/^## Every fault/p' "$OUT/report.md" | sed '$d'
echo "fleet chaos: $([[ $rc == 0 ]] && echo pass || echo FAIL); seed $SEED; report $OUT/report.md"
exit $rc
