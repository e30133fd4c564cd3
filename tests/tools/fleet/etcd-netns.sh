#!/bin/bash
# etcd-netns.sh — a 3-member etcd cluster, one member per network namespace, on one bridge.
#
#   etcd-netns.sh demo        up, health from a client namespace, kill -9 the raft leader,
#                             show the cluster still serves, down; prints timings (default)
#   etcd-netns.sh up | down   bring it up / tear everything down (idempotent)
#   etcd-netns.sh exec CMD..  run CMD in the client namespace (etcdctl, fleet-spike, ...)
#
# Topology (nothing is added to the root namespace):
#   netns fs-sw  : bridge fsbr0 (no address)
#   netns fs-e1/2/3 : eth0 10.77.0.11/12/13, etcd member e1/e2/e3 (client :2379, peer :2380)
#   netns fs-cli : eth0 10.77.0.100, where clients run
# Each host namespace is joined to the bridge by a veth pair. Needs root, iproute2, etcd 3.4.
# Extra etcd flags: FS_ETCD_FLAGS="--heartbeat-interval 100 --election-timeout 500"
set -euo pipefail

PFX=fs
SW=$PFX-sw
BR=fsbr0
NET=10.77.0
MEMBERS=(e1 e2 e3)
declare -A IP=([e1]=$NET.11 [e2]=$NET.12 [e3]=$NET.13 [cli]=$NET.100)
STATE=/tmp/fleet-spike-netns          # pids, data dirs, logs
ENDPOINTS=http://$NET.11:2379,http://$NET.12:2379,http://$NET.13:2379
export ETCDCTL_API=3

now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
in_ns() { local ns=$1; shift; ip netns exec "$PFX-$ns" "$@"; }
ctl() { in_ns cli etcdctl --dial-timeout 1s --command-timeout 2s --endpoints "${1:-$ENDPOINTS}" "${@:2}"; }

add_host() { # name -> netns fs-NAME with eth0 on the bridge
    local h=$1 ns=$PFX-$1
    ip netns add "$ns"
    ip -n "$SW" link add "v-$h" type veth peer name eth0 netns "$ns"
    ip -n "$SW" link set "v-$h" master "$BR" up
    ip -n "$ns" addr add "${IP[$h]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}

up() {
    [ -e "/run/netns/$SW" ] && { echo "already up (run: $0 down)"; exit 1; }
    mkdir -p "$STATE"
    ip netns add "$SW"
    ip -n "$SW" link add "$BR" type bridge
    ip -n "$SW" link set "$BR" up
    for h in "${MEMBERS[@]}" cli; do add_host "$h"; done
    local cluster="" m
    for m in "${MEMBERS[@]}"; do cluster+="${cluster:+,}$m=http://${IP[$m]}:2380"; done
    for m in "${MEMBERS[@]}"; do
        # `ip netns exec` forks, so $! would be ip's pid: the wrapper records etcd's own pid
        # ($$ survives the exec). setsid: members must not die with the shell's process group.
        in_ns "$m" setsid sh -c 'echo $$ >"$0"; exec "$@"' "$STATE/$m.pid" \
            etcd --name "$m" --data-dir "$STATE/$m.data" \
            --listen-client-urls "http://${IP[$m]}:2379,http://127.0.0.1:2379" \
            --advertise-client-urls "http://${IP[$m]}:2379" \
            --listen-peer-urls "http://${IP[$m]}:2380" \
            --initial-advertise-peer-urls "http://${IP[$m]}:2380" \
            --initial-cluster "$cluster" --initial-cluster-token fleet-spike \
            --initial-cluster-state new --logger zap --log-outputs stderr \
            ${FS_ETCD_FLAGS:-} >"$STATE/$m.log" 2>&1 &
    done
    for m in "${MEMBERS[@]}"; do
        for _ in $(seq 50); do [ -s "$STATE/$m.pid" ] && break; sleep 0.02; done
    done
    local i
    for i in $(seq 150); do
        ctl "" endpoint health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "cluster not healthy after 15 s"; tail -n3 "$STATE"/*.log; return 1
}

ns_pids() { # every process living in our namespaces (ours by construction)
    local h
    for h in "${MEMBERS[@]}" cli; do
        [ -e "/run/netns/$PFX-$h" ] && ip netns pids "$PFX-$h" 2>/dev/null
    done
    return 0
}

down() {
    local m pids
    # SIGKILL, not SIGTERM: the data is thrown away, and a raft leader that gets SIGTERM
    # while its peers stop too spends 7 s in a failing leadership transfer.
    pids="$(cat "$STATE"/*.pid 2>/dev/null || true) $(ns_pids)"
    [ -n "${pids// /}" ] && kill -9 $pids 2>/dev/null || true
    for _ in $(seq 50); do
        [ -z "$(ns_pids)" ] && break; sleep 0.05
    done
    for h in "${MEMBERS[@]}" cli; do ip netns del "$PFX-$h" 2>/dev/null || true; done
    ip netns del "$SW" 2>/dev/null || true   # takes the bridge and the veth ends with it
    rm -rf "$STATE"
}

leader_of() { # prints the member name of the raft leader
    ctl "" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    if e["Status"]["leader"] == e["Status"]["header"]["member_id"]:
        print({"11": "e1", "12": "e2", "13": "e3"}[e["Endpoint"].split(":")[1].split(".")[-1]])'
}

demo() {
    trap down EXIT
    local t
    t=$(now); up; echo "UP: 3 namespaces + bridge + 3 members healthy in $(ms_since "$t") ms"
    ctl "" endpoint health
    ctl "" endpoint status -w table
    ctl "" put /spike/netns before-kill >/dev/null
    local l; l=$(leader_of); echo "raft leader: $l (pid $(cat "$STATE/$l.pid"))"
    local alive=() m
    for m in "${MEMBERS[@]}"; do [ "$m" != "$l" ] && alive+=("http://${IP[$m]}:2379"); done
    alive=$(IFS=,; echo "${alive[*]}")
    t=$(now); kill -9 "$(cat "$STATE/$l.pid")"
    echo "kill -9 $l"
    # first committed (linearizable) write after the kill, asked of the survivors only
    for _ in $(seq 200); do
        in_ns cli etcdctl --dial-timeout 0.2s --command-timeout 0.2s --endpoints "$alive" put /spike/netns after-kill >/dev/null 2>&1 && break
        sleep 0.02
    done
    echo "first committed put after killing the raft leader: $(ms_since "$t") ms (raft re-election)"
    ctl "" endpoint health 2>&1 | grep -v retry_interceptor || true   # dead member: unhealthy, exit 1
    ctl "" endpoint status -w table 2>/dev/null || true
    t=$(now); ctl "" get /spike/netns; echo "get via all 3 endpoints: $(ms_since "$t") ms"
    ctl "$alive" endpoint health
    trap - EXIT
    t=$(now); down; echo "DOWN: processes, namespaces, bridge, temp dirs removed in $(ms_since "$t") ms"
    ip netns list | grep "^$PFX-" && { echo "LEFTOVER namespaces"; exit 1; } || echo "no $PFX-* namespaces left"
    pgrep -f "$STATE" && { echo "LEFTOVER etcd"; exit 1; } || echo "no etcd left"
}

case "${1:-demo}" in
    up) t=$(now); up; echo "up in $(ms_since "$t") ms; endpoints $ENDPOINTS" ;;
    down) t=$(now); down; echo "down in $(ms_since "$t") ms" ;;
    exec) shift; in_ns cli "$@" ;;
    demo) demo ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
