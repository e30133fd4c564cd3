#!/bin/bash
# etcd-local.sh start [extra etcd flags...] | stop
# One etcd member on 127.0.0.1:23791 (client) / 23801 (peer), temp data dir, pid in /tmp/fleet-spike-etcd.pid
set -euo pipefail
PIDF=/tmp/fleet-spike-etcd.pid
case "${1:-}" in
start)
    shift
    DIR=$(mktemp -d /tmp/fleet-spike-etcd.XXXXXX)
    setsid etcd --name spike --data-dir "$DIR/data" \
        --listen-client-urls http://127.0.0.1:23791 --advertise-client-urls http://127.0.0.1:23791 \
        --listen-peer-urls http://127.0.0.1:23801 --initial-advertise-peer-urls http://127.0.0.1:23801 \
        --initial-cluster spike=http://127.0.0.1:23801 --initial-cluster-state new \
        --logger zap --log-outputs stderr "$@" >"$DIR/etcd.log" 2>&1 &
    echo "$! $DIR" > "$PIDF"
    for _ in $(seq 100); do
        ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:23791 endpoint health >/dev/null 2>&1 && { echo "etcd up pid $! dir $DIR"; exit 0; }
        kill -0 $! 2>/dev/null || { echo "etcd exited:"; tail -5 "$DIR/etcd.log"; rm -f "$PIDF"; exit 1; }
        sleep 0.1
    done
    echo "etcd not healthy"; exit 1 ;;
stop)
    [ -f "$PIDF" ] || exit 0
    read -r PID DIR < "$PIDF"
    kill "$PID" 2>/dev/null || true
    while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
    rm -rf "$DIR" "$PIDF"; echo "etcd stopped" ;;
*) echo "usage: $0 start [flags]|stop"; exit 2 ;;
esac
