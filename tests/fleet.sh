#!/usr/bin/env bash
# End to end: the fleet. Two boxes (nonstopd) run channel "news" active-passive
# on a 3-member etcd cluster, each fed the same MPEG-TS stream over UDP by one
# sender, both sending UDP to one receiver; everything in network namespaces
# (tests/tools/fleet/netns.bash). The receiver (tests/tools/fleet/judge.py)
# records every datagram and judges each fault from its side: the gap between
# the old leader's last datagram and the new one's first, the overlap (any
# datagram from the old leader after the new one's first), whether the new
# leader starts on a keyframe, and that the stream on air then runs on unbroken
# (no gap over 0.5 s, no MPEG-TS continuity counter break: an output that
# restarts shows). From a steady state (one leads, one stands by):
#   1 kill -9 the leader; it comes back as standby and takes nothing back
#   2 SIGSTOP the leader for TTL + 2 s; after SIGCONT it sends nothing
#   3 drain the leader (handover); undrain moves nothing back
#   4 kill -9 etcd's raft leader, then a follower: nothing changes on air
#   5 cut the leader from etcd alone for 6 s: nothing changes on air (failsafe)
#   6 stop all of etcd for 6 s: nothing changes on air (failsafe)
#   7 cut the leader from everything for 6 s: the other takes over; the old
#     one sends nothing when it is back
#   8 rolling restart (SIGTERM a, start it, then b): no gap over 1.5 s
source "$(dirname "$0")/common.bash"
source "$ROOT/tests/tools/fleet/netns.bash"

if (($(id -u) != 0)); then skipped "fleet: needs root (network namespaces)"; exit 0; fi
command -v etcd >/dev/null || { skipped "fleet: no etcd (apt-get install etcd-server etcd-client)"; exit 0; }
cargo build --release --quiet -p nonstop-supervisor

TTL=2      # [fleet] ttl in netns.bash's config
KEYFRAME=1 # keyframe_interval
# kill -9 → first datagram of the new leader: the lease runs out after at most
# TTL, etcd's lessor notices within 0.5 s more (docs/fleet.md), and the new
# leader's output waits for a keyframe it forces (one interval at worst).
TAKEOVER=$(awk -v t=$TTL -v k=$KEYFRAME 'BEGIN { print t + 0.5 + k }')
HANDOVER=1.5 # drain, SIGTERM: the old leader resigns, no lease to wait for
ON_AIR_GAP=0.5 # the largest gap allowed where nothing should change
# ... and on the new leader after a switch: looser, as both boxes share this
# machine's CPUs (a box resuming from SIGSTOP, catching up, starved the new
# leader for 633 ms once on a loaded 2-core machine; 50-160 ms otherwise).
SWITCHED_GAP=1.0
JUDGE="$ROOT/tests/tools/fleet/judge.py"
CAP=$NSF_DIR/rx.cap
RESULTS=()
started=$SECONDS

STAGE="set-up"
stage() { STAGE=$1; echo "-- $1"; }

on_exit() {
  local rc=$?
  if ((rc != 0)) && [[ -d $NSF_DIR ]]; then
    echo "failed in: $STAGE" >&2
    for x in a b; do
      [[ -e $NSF_DIR/box-$x.log ]] || continue
      echo "--- last lines of box-$x's log" >&2
      grep -vE 'encoder backend|open file limit' "$NSF_DIR/box-$x.log" | tail -n 25 >&2
      # This test sends SIGTERM in fault 8 only.
      [[ $STAGE == 8* ]] || ! grep -q "SIGTERM: stopping" "$NSF_DIR/box-$x.log" ||
        echo "NOTE: box-$x was sent a SIGTERM from outside this test (something stopping every nonstopd?)" >&2
    done
  fi
  topo_down
  [[ -n ${KEEP_WORK:-} ]] && { echo "kept $WORK" >&2; return; }
  cleanup_pids
}
trap on_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT


# this_run BOX: its log since it was last started.
this_run() { awk '/^=== start/ { n = NR } { l[NR] = $0 } END { for (i = n; i <= NR; i++) print l[i] }' "$(box_log "$1")"; }
# expect_role BOX ROLE FAULT: BOX's channel has ROLE now.
expect_role() {
  [[ $(role "$1") == "$2" ]] || fail "$3: box-$1 is $(role "$1"), want $2"
}

# verdict NAME FROM TO EXPECT MAX_GAP [OLD_BOX NEW_BOX]: the receiver's judgement
# of one fault; its line goes to the summary, a broken rule fails the test.
verdict() {
  local out rc=0 ids=()
  [[ -n ${6:-} ]] && ids=(--old "${NSF_IP[$6]}" --new "${NSF_IP[${7:-$6}]}")
  out=$(judge check "$CAP" --name "$1" --from "$2" --to "$3" --expect "$4" --max-gap "$5" \
    --on-air-gap "$SWITCHED_GAP" "${ids[@]}" "${@:8}") || rc=$?
  echo "$out" | grep -v '^FAIL' | sed 's/^/   /'
  RESULTS+=("$(echo "$out" | grep -v '^FAIL')")
  ((rc == 0)) || fail "$(echo "$out" | grep '^FAIL' | sed 's/^FAIL: //')"
}

echo "-- judge.py self-check"
gst-launch-1.0 -q videotestsrc num-buffers=100 pattern=ball ! video/x-raw,width=160,height=90,framerate=25/1 \
  ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse ! mpegtsmux alignment=7 \
  ! filesink location="$WORK/selftest.ts"
judge selftest "$WORK/selftest.ts" | sed 's/^/   /'

stage "topology $NSF-*: 3 etcd members, 2 boxes, a sender, a receiver"
reap_stale
topo_up
for m in "${MEMBERS[@]}"; do etcd_start "$m"; done
etcd_healthy 20
ns_spawn rx rx "$PY" "$JUDGE" record 6000 "$CAP"
ns_spawn tx tx "$TS_SENDER" ball 320x180 multiudpsink clients="${NSF_IP[a]}:5000,${NSF_IP[b]}:5000"
box_start a
box_start b
steady
echo "   box-$LEADER leads, box-$STANDBY stands by ($((SECONDS - started)) s)"

stage "1. kill -9 the leader"
old=$LEADER new=$STANDBY from=$(log_lines "$new")
t0=$(mark)
signal KILL "box-$old"
how=$(takeover "$new" "$from")
sleep 2
echo "   box-$new took over ($how); restarting box-$old"
box_start "$old"
wait_role "$old" standby 30
sleep 5 # no flapping: the receiver must see box-$new alone
this_run "$old" | grep -q "takes channel news over" && fail "fault 1: the restarted box-$old took the channel back"
verdict "1 kill -9 leader" "$t0" "$(mark)" switch "$TAKEOVER" "$old" "$new"
expect_role "$old" standby "fault 1"

stage "2. SIGSTOP the leader for TTL + 2 s"
steady
old=$LEADER new=$STANDBY from=$(log_lines "$new") from_old=$(log_lines "$old")
t0=$(mark)
signal STOP "box-$old"
how=$(takeover "$new" "$from")
sleep_until "$(after "$t0" $((TTL + 2)))"
signal CONT "box-$old"
echo "   box-$new took over ($how); box-$old continued"
wait_log "$(box_log "$old")" 'fleet role.*role="?standby' 15 "$from_old" >/dev/null
sleep 3
verdict "2 SIGSTOP leader" "$t0" "$(mark)" switch "$TAKEOVER" "$old" "$new"
expect_role "$old" standby "fault 2"

stage "3. drain the leader, then undrain it"
steady
old=$LEADER new=$STANDBY from=$(log_lines "$new")
t0=$(mark)
ctl put "/nonstop/drain/box-$old" 1 >/dev/null
how=$(takeover "$new" "$from")
sleep 4 # the cut is up to 0.8 s + one GOP after the drain
verdict "3 drain leader" "$t0" "$(mark)" switch "$HANDOVER" "$old" "$new" --seamless
t0=$(mark)
ctl del "/nonstop/drain/box-$old" >/dev/null
sleep 5
verdict "3 undrain" "$t0" "$(mark)" same "$ON_AIR_GAP" "$new"
expect_role "$new" active "fault 3"
expect_role "$old" standby "fault 3"

for which in leader follower; do
  stage "4. kill -9 etcd's raft $which"
  steady
  l=$(etcd_leader)
  [[ -n $l ]] || fail "fault 4: no etcd raft leader"
  m=$l
  [[ $which == leader ]] || m=$(printf '%s\n' "${MEMBERS[@]}" | grep -vx "$l" | head -n 1)
  t0=$(mark)
  signal KILL "$m"
  sleep 5
  etcd_start "$m"
  etcd_healthy 20
  sleep 1
  verdict "4 kill -9 etcd $which ($m)" "$t0" "$(mark)" same "$ON_AIR_GAP" "$LEADER"
done

stage "5. cut the leader from etcd alone for 6 s"
steady
t0=$(mark)
cut_etcd "$LEADER" on
sleep 6
cut_etcd "$LEADER" off
sleep 3
verdict "5 leader cut from etcd" "$t0" "$(mark)" same "$ON_AIR_GAP" "$LEADER"

stage "6. stop all of etcd for 6 s"
steady
t0=$(mark)
for m in "${MEMBERS[@]}"; do signal KILL "$m"; done
sleep 6
for m in "${MEMBERS[@]}"; do etcd_start "$m"; done
etcd_healthy 20
sleep 3
verdict "6 etcd down" "$t0" "$(mark)" same "$ON_AIR_GAP" "$LEADER"

stage "7. cut the leader from everything for 6 s"
steady
old=$LEADER new=$STANDBY from=$(log_lines "$new") from_old=$(log_lines "$old")
t0=$(mark)
link "$old" down
how=$(takeover "$new" "$from")
sleep_until "$(after "$t0" 6)"
link "$old" up
echo "   box-$new took over ($how); box-$old's link is back"
wait_log "$(box_log "$old")" 'fleet role.*role="?standby' 15 "$from_old" >/dev/null
wait_log "$(box_log "$old")" 'fleet: lease granted' 15 "$from_old" >/dev/null
sleep 3
verdict "7 leader cut off" "$t0" "$(mark)" switch "$TAKEOVER" "$old" "$new"
expect_role "$old" standby "fault 7"

stage "8. rolling restart: SIGTERM box-a, start it, then box-b"
steady
for x in a b; do
  led=$(leader_node) from=$(log_lines "$x")
  t0=$(mark)
  signal TERM "box-$x"
  gone "box-$x" 10
  tail -n +"$from" "$(box_log "$x")" | grep -q "fleet: left (lease revoked)" ||
    fail "fault 8: box-$x did not revoke its lease at SIGTERM"
  box_start "$x"
  wait_role "$x" standby 30 # it was led for, or the other box leads now
  sleep 1
  if [[ $led == "box-$x" ]]; then
    verdict "8 SIGTERM box-$x (leader)" "$t0" "$(mark)" switch "$HANDOVER" "$x" "$(other "$x")"
  else
    verdict "8 SIGTERM box-$x (standby)" "$t0" "$(mark)" same "$HANDOVER" "$(other "$x")"
  fi
done
grep -q "output did not finish" "$NSF_DIR"/box-?.log && fail "an output did not finish at SIGTERM"

echo "-- summary ($((SECONDS - started)) s)"
printf '   %s\n' "${RESULTS[@]}"
echo "PASS fleet"
