# netns.bash — the fleet's test bench in network namespaces (sourced by tests/fleet.sh,
# tests/chaos/fleet.sh and the other fleet tests).
#
# Topology (nothing is added to the root namespace; every name starts with $NSF,
# nsf-<pid of the test> by default, so a stale run cannot collide with this one):
#   $NSF-sw             bridge br0, no address
#   $NSF-e1/e2/e3       etcd members, 10.77.0.11/12/13 (client :2379, peer :2380)
#   $NSF-a / $NSF-b     the boxes (nonstopd), 10.77.0.21/22, node names box-a / box-b
#   $NSF-tx             the sender, 10.77.0.40: one MPEG-TS stream to both boxes' :5000
#   $NSF-rx             the receiver (judge.py record), 10.77.0.50:6000
#   $NSF-cli            etcdctl, 10.77.0.100
# Each host has eth0, a veth whose other end is on the bridge (v-HOST in $NSF-sw).
#
# Every process runs inside one of these namespaces, through a wrapper that
# writes its own pid to $NSF_DIR/NAME.pid (`ip netns exec` forks, so $! is not
# it) and appends its output to $NSF_DIR/NAME.log. topo_down kills whatever
# `ip netns pids` finds in them, then deletes them: nothing can outlive it.
#
# Needs root, iproute2, etcd 3.4, and $WORK (tests/common.bash).

NSF=${NSF:-nsf-$$}
NSF_DIR=${NSF_DIR:-$WORK/fleet}
NET=10.77.0
NSF_HOSTS=(e1 e2 e3 a b tx rx cli)
MEMBERS=(e1 e2 e3)
declare -A NSF_IP=([e1]=$NET.11 [e2]=$NET.12 [e3]=$NET.13 [a]=$NET.21 [b]=$NET.22
  [tx]=$NET.40 [rx]=$NET.50 [cli]=$NET.100)
ENDPOINTS=http://$NET.11:2379,http://$NET.12:2379,http://$NET.13:2379
# docs/fleet.md: with these a raft leader's death does not outlast a 2 s lease.
ETCD_FLAGS=${ETCD_FLAGS:---heartbeat-interval 100 --election-timeout 500}
export ETCDCTL_API=3

in_ns() { local h=$1; shift; ip netns exec "$NSF-$h" "$@"; }

# ns_spawn NAME HOST CMD...: runs CMD in HOST's namespace, in a session of its
# own, in the background; its pid goes to $NSF_DIR/NAME.pid, its stdout and
# stderr to $NSF_DIR/NAME.log (appended: a restarted process keeps one log).
ns_spawn() {
  local name=$1 h=$2
  shift 2
  rm -f "$NSF_DIR/$name.pid"
  ip netns exec "$NSF-$h" setsid sh -c 'echo $$ >"$0"; exec "$@"' "$NSF_DIR/$name.pid" "$@" \
    >>"$NSF_DIR/$name.log" 2>&1 </dev/null &
  disown $! # no "Killed" notice when a fault kills it
  local _
  for _ in $(seq 100); do [[ -s $NSF_DIR/$name.pid ]] && return 0; sleep 0.02; done
  fail "$name did not start: $(tail -n 3 "$NSF_DIR/$name.log")"
}

pid_of() { cat "$NSF_DIR/$1.pid"; }

# signal SIG NAME: sends SIG to a process started by ns_spawn.
signal() { kill -"$1" "$(pid_of "$2")"; }

# gone NAME [TIMEOUT]: waits until the process has exited (it is not our
# child: `wait` cannot reap it, but it is reaped by init once it exits).
gone() {
  local pid _ deadline
  pid=$(pid_of "$1")
  deadline=$(($(date +%s) + ${2:-10}))
  while [[ -e /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
    (($(date +%s) < deadline)) || fail "$1 (pid $pid) did not exit within ${2:-10} s"
    sleep 0.05
  done
}

add_host() { # HOST: its namespace, eth0 on the bridge
  local h=$1 ns=$NSF-$1
  ip netns add "$ns"
  ip -n "$NSF-sw" link add "v-$h" type veth peer name eth0 netns "$ns"
  ip -n "$NSF-sw" link set "v-$h" master br0 up
  ip -n "$ns" addr add "${NSF_IP[$h]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}

topo_up() {
  mkdir -p "$NSF_DIR"
  ip netns add "$NSF-sw"
  ip -n "$NSF-sw" link add br0 type bridge
  ip -n "$NSF-sw" link set br0 up
  local h
  for h in "${NSF_HOSTS[@]}"; do add_host "$h"; done
}

ns_pids() { # every process living in our namespaces (ours by construction)
  local h
  for h in "${NSF_HOSTS[@]}"; do
    [[ -e /run/netns/$NSF-$h ]] && ip netns pids "$NSF-$h" 2>/dev/null
  done
  return 0
}

# topo_down: kills every process in the namespaces (stopped ones too), deletes
# the namespaces (the bridge and the veths go with them). Idempotent.
topo_down() {
  local pids h _
  for _ in $(seq 50); do
    pids=$(ns_pids)
    [[ -z $pids ]] && break
    kill -KILL $pids 2>/dev/null || true
    sleep 0.05
  done
  for h in "${NSF_HOSTS[@]}" sw; do ip netns del "$NSF-$h" 2>/dev/null || true; done
}

# reap_stale: the namespaces of an earlier run of this test that died without
# its cleanup (nsf-PID-* whose PID is gone): their processes, then them.
reap_stale() {
  local ns pid
  for ns in $(ip netns list | awk '{print $1}' | grep -E '^nsf-[0-9]+-' || true); do
    pid=${ns#nsf-}
    pid=${pid%%-*}
    [[ -e /proc/$pid ]] && continue
    echo "   removing $ns (left by an earlier run, pid $pid)"
    kill -KILL $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}

# --- etcd ---------------------------------------------------------------------

# etcd_start MEMBER: starts (or restarts, on its data dir) one member.
etcd_start() {
  local m=$1 cluster="" x
  for x in "${MEMBERS[@]}"; do cluster+="${cluster:+,}$x=http://${NSF_IP[$x]}:2380"; done
  # shellcheck disable=SC2086 # ETCD_FLAGS is a list of flags
  ns_spawn "$m" "$m" etcd --name "$m" --data-dir "$NSF_DIR/$m.data" \
    --listen-client-urls "http://${NSF_IP[$m]}:2379" \
    --advertise-client-urls "http://${NSF_IP[$m]}:2379" \
    --listen-peer-urls "http://${NSF_IP[$m]}:2380" \
    --initial-advertise-peer-urls "http://${NSF_IP[$m]}:2380" \
    --initial-cluster "$cluster" --initial-cluster-token "$NSF" \
    --initial-cluster-state new --logger zap --log-outputs stderr $ETCD_FLAGS
}

# ctl ARGS...: etcdctl from the client namespace, against every member.
ctl() { in_ns cli etcdctl --dial-timeout 1s --command-timeout 2s --endpoints "$ENDPOINTS" "$@"; }

# etcd_healthy [TIMEOUT] [ENDPOINTS]: waits until every given member is healthy.
etcd_healthy() {
  local deadline=$(($(date +%s) + ${1:-20}))
  until in_ns cli etcdctl --dial-timeout 1s --command-timeout 2s --endpoints "${2:-$ENDPOINTS}" \
    endpoint health >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || fail "etcd not healthy within ${1:-20} s: $(tail -n 2 "$NSF_DIR"/e?.log)"
    sleep 0.1
  done
}

# etcd_leader: the member that is raft leader now (e1, e2 or e3).
etcd_leader() {
  ctl endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["leader"] == e["Status"]["header"]["member_id"]:
        print("e" + str(int(e["Endpoint"].split(":")[1].split(".")[-1]) - 10))'
}

# --- boxes ----------------------------------------------------------------------

declare -A BOX_NODE=([a]=box-a [b]=box-b)
declare -A BOX_OF=([box-a]=a [box-b]=b)

# box_config BOX: writes $NSF_DIR/box-BOX.toml. Both boxes run the same
# config but for `node` and `peer`.
box_config() {
  local x=$1
  cat >"$NSF_DIR/box-$x.toml" <<TOML
[fleet]
endpoints = ["http://$NET.11:2379", "http://$NET.12:2379", "http://$NET.13:2379"]
node = "${BOX_NODE[$x]}"
prefix = "/nonstop"
ttl = "2s"
peer = "${NSF_IP[$x]}:7580"

[[channel]]
id = "news"
video = { width = 320, height = 180, framerate = 25 }

[[channel.input]]
id = "main"
uri = "udp://0.0.0.0:5000"

[[channel.input]]
id = "slate"
uri = "slate://colour/black?text=slate"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 400
keyframe_interval = "1s"

[[channel.output]]
id = "out"
uri = "udp://${NSF_IP[rx]}:6000"
TOML
}

# box_start BOX: starts nonstopd on box a or b; its log is $NSF_DIR/box-BOX.log.
box_start() {
  local x=$1
  [[ -e $NSF_DIR/box-$x.toml ]] || box_config "$x"
  echo "=== start $(date +%T.%N)" >>"$NSF_DIR/box-$x.log"
  ns_spawn "box-$x" "$x" env RUST_LOG=info "$NONSTOPD" --config "$NSF_DIR/box-$x.toml" \
    --no-dbus --metrics ""
}

box_log() { echo "$NSF_DIR/box-$1.log"; }
log_lines() { wc -l <"$(box_log "$1")"; }

# leader_node: the node etcd names leader of the channel ("" when none).
leader_node() {
  ctl get /nonstop/leaders/news --print-value-only 2>/dev/null |
    python3 -c 'import json, sys; s = sys.stdin.read().strip(); print(json.loads(s)["node"] if s else "")'
}

# --- faults ------------------------------------------------------------------

# cut_etcd BOX on|off: BOX can (not) reach any etcd member; all else still flows.
cut_etcd() {
  local x=$1 verb=add m
  [[ $2 == off ]] && verb=del
  for m in "${MEMBERS[@]}"; do ip -n "$NSF-$x" route "$verb" blackhole "${NSF_IP[$m]}/32"; done
}

# link HOST up|down: HOST's veth on the bridge side (it is cut from everything).
link() { ip -n "$NSF-sw" link set "v-$1" "$2"; }

# --- the test's view of the boxes (tests/fleet.sh and tests/chaos/fleet.sh)
# The caller defines this_run BOX (its log since its last start), sets PY,
# JUDGE and CAP (the receiver's capture), and `fail`.

judge() { "$PY" "$JUDGE" "$@"; }
mark() { echo "$EPOCHREALTIME"; }
sleep_until() { sleep "$(awk -v t="$1" -v n="$EPOCHREALTIME" 'BEGIN { d = t - n; print (d > 0 ? d : 0) }')"; }
after() { awk -v t="$1" -v d="$2" 'BEGIN { printf "%.6f", t + d }'; }
other() { [[ $1 == a ]] && echo b || echo a; }

# role BOX: its channel's last fleet role in this run.
role() { this_run "$1" | grep 'fleet role' | tail -n 1 | sed -nE 's/.*role="?([a-z]+)"?.*/\1/p'; }
# running BOX: its channel runs (warm: what its input does is the channel's
# business; a standby on its slate takes over as fast).
running() { this_run "$1" | grep -q 'nonstopd running'; }

# wait_role BOX ROLE TIMEOUT: BOX's channel runs, with ROLE.
wait_role() {
  local deadline=$((SECONDS + $3))
  until [[ $(role "$1") == "$2" ]] && running "$1"; do
    ((SECONDS < deadline)) || fail "box-$1 is not $2 within $3 s (role '$(role "$1")')"
    sleep 0.1
  done
}

# steady [TIMEOUT]: etcd names one box leader, it is active and the other
# standby (both running), and the receiver has had the leader alone for 3 s
# (default: within 30 s). Sets LEADER and STANDBY (a or b).
steady() {
  local deadline=$((SECONDS + ${1:-30})) l=""
  while :; do
    l=$(leader_node)
    if [[ -n $l && -n ${BOX_OF[$l]:-} ]]; then
      LEADER=${BOX_OF[$l]}
      STANDBY=$(other "$LEADER")
      [[ $(role "$LEADER") == active && $(role "$STANDBY") == standby ]] && running "$LEADER" &&
        running "$STANDBY" && judge steady "$CAP" --ip "${NSF_IP[$LEADER]}" --for 3 && return 0
    fi
    ((SECONDS < deadline)) || fail "no steady state within ${1:-30} s: etcd names '$l' leader, roles a=$(role a) b=$(role b); $(judge steady "$CAP" --ip "${NSF_IP[${LEADER:-a}]}" --for 3 -v)"
    sleep 0.2
  done
}

# takeover BOX FROM_LINE: waits for BOX to take the channel over; prints
# "reason, token N".
takeover() {
  local line
  line=$(wait_log "$(box_log "$1")" "takes channel news over from" 15 "$2")
  sed -nE 's/.*over from [^ ]+ \(([a-z-]+)\), token ([0-9]+).*/\1, token \2/p' <<<"$line"
}
