#!/usr/bin/env bash
# End to end: UDP multicast options (docs/config.md#udp-multicast), on a
# small network of namespaces this test makes (and removes at exit):
#
#   tx (10.77.0.1, 10.77.0.3, fd77::1, fd77::3) ─ veth ─ rx (10.77.0.2, fd77::2)
#   tx (10.78.0.1) ─────────────────────────── veth ─ nx (10.78.0.2)
#
# tx's multicast route points at nx: a group leaves tx towards rx only when
# an output names tx's interface to rx.
#
# 1. Outputs (nonstopd in tx, a test pattern channel): a receiver in rx
#    sees `ttl=16&iface=tx0` with TTL 16 (IP_RECVTTL) and an output
#    without `ttl` with TTL 1 (udpsink's default); the output without
#    `iface` is not seen in rx but is in nx (the route), with its `ttl=8`;
#    `loop=false` keeps a group from tx's own receivers, while `loop`'s
#    default lets the other one through.
# 2. Inputs, source-specific multicast (nonstopd in rx): its primary is
#    `udp://@232.77.0.1:5010?source=10.77.0.1&iface=rx0`, a second input
#    the same over IPv6 (`udp://@[ff3e::8000:77]:5012?source=fd77::1&…`).
#    Senders from 10.77.0.3 and fd77::3 to those groups reach rx (an
#    any-source receiver there gets them) while the inputs receive nothing
#    and the backup stays on air; senders from 10.77.0.1 and fd77::1 then
#    put the primary on air and the IPv6 input up.
#
# What it does not show: a datagram crossing a router (the TTL is read
# where it arrives; no multicast routing daemon runs here), IPv6 outputs.
# Needs root (network namespaces); without, it is skipped, said so.
source "$(dirname "$0")/common.bash"

if [[ $(id -u) != 0 ]] || ! ip netns list >/dev/null 2>&1; then
  skipped "udp_multicast: needs root and ip netns"
  echo "PASS udp_multicast (skipped)"
  exit 0
fi
cargo build --release --quiet -p nonstop-supervisor

TX=nsmc$$tx RX=nsmc$$rx NX=nsmc$$nx
cleanup_ns() {
  local n
  for n in "$TX" "$RX" "$NX"; do ip netns del "$n" 2>/dev/null || true; done
}
trap 'cleanup_pids; cleanup_ns' EXIT
for n in "$TX" "$RX" "$NX"; do
  ip netns add "$n"
  ip -n "$n" link set lo up
done
ip -n "$TX" link add tx0 type veth peer name rx0 netns "$RX"
ip -n "$TX" link add txn type veth peer name nxn netns "$NX"
ip -n "$TX" addr add 10.77.0.1/24 dev tx0
ip -n "$TX" addr add 10.77.0.3/24 dev tx0
ip -n "$RX" addr add 10.77.0.2/24 dev rx0
# IPv6 too, usable at once (no duplicate address detection).
ip -n "$TX" addr add fd77::1/64 dev tx0 nodad
ip -n "$TX" addr add fd77::3/64 dev tx0 nodad
ip -n "$RX" addr add fd77::2/64 dev rx0 nodad
ip -n "$TX" addr add 10.78.0.1/24 dev txn
ip -n "$NX" addr add 10.78.0.2/24 dev nxn
ip -n "$TX" link set tx0 up
ip -n "$TX" link set txn up
ip -n "$RX" link set rx0 up
ip -n "$NX" link set nxn up
ip -n "$TX" route add 224.0.0.0/4 dev txn
ip -n "$RX" route add 224.0.0.0/4 dev rx0
ip -n "$NX" route add 224.0.0.0/4 dev nxn
# A veth pair carries once both ends are up: wait for that.
deadline=$((SECONDS + 10))
until [[ $(ip netns exec "$TX" cat /sys/class/net/tx0/operstate /sys/class/net/txn/operstate) == $'up\nup' ]]; do
  ((SECONDS < deadline)) || fail "the namespaces' links do not come up"
  sleep 0.05
done

cat >"$WORK/mc.py" <<'PY'
import json, socket, struct, sys, time, urllib.request

IP_RECVTTL, IP_TTL, IP_ADD_SOURCE_MEMBERSHIP = 12, 2, 39


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def recv(out, seconds, joins):
    """Joins GROUP:PORT@IFADDR each (one socket per group); for SECONDS
    writes to OUT, every 0.2 s, {group: {"n": datagrams, "ttl": [seen],
    "from": [senders]}}."""
    socks = []
    for j in joins:
        gp, where = j.split("@")
        group, port = gp.rsplit(":", 1)
        if group.startswith("["):  # IPv6: [GROUP]:PORT@INTERFACE
            group = group.strip("[]")
            ifindex = socket.if_nametoindex(where)
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((group, int(port), 0, ifindex))
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                         socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex))
        else:  # GROUP:PORT@INTERFACE_ADDRESS
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((group, int(port)))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         socket.inet_aton(group) + socket.inet_aton(where))
            s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        s.setblocking(False)
        socks.append((group, s))
    seen = {g: {"n": 0, "ttl": [], "from": []} for g, _ in socks}
    end, flush = time.time() + seconds, 0
    import select
    while time.time() < end:
        r, _, _ = select.select([s for _, s in socks], [], [], 0.05)
        for g, s in socks:
            if s not in r:
                continue
            while True:
                try:
                    _, anc, _, addr = s.recvmsg(2048, 64)
                except BlockingIOError:
                    break
                e = seen[g]
                e["n"] += 1
                for lvl, t, d in anc:
                    if lvl == socket.IPPROTO_IP and t == IP_TTL:
                        ttl = struct.unpack("i", d[:4])[0]
                        if ttl not in e["ttl"]:
                            e["ttl"].append(ttl)
                if addr[0] not in e["from"]:
                    e["from"].append(addr[0])
        if time.time() > flush:
            with open(out + ".tmp", "w") as f:
                json.dump(seen, f)
            import os
            os.replace(out + ".tmp", out)
            flush = time.time() + 0.2


def metric(url, name, labels):
    """The value of NAME{LABELS...} (label=value pairs), or None."""
    want = dict(l.split("=", 1) for l in labels)
    with urllib.request.urlopen(url + "/metrics", timeout=3) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, value = line.rsplit(" ", 1)
        got = dict(kv.split("=", 1) for kv in head[len(name) + 1:-1].split(",")) if "{" in head else {}
        got = {k: v.strip('"') for k, v in got.items()}
        if all(got.get(k) == v for k, v in want.items()):
            return float(value)
    return None


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "recv":
        recv(args[0], float(args[1]), args[2:])
    elif cmd == "metric":
        try:
            v = metric(args[0], args[1], args[2:])
        except OSError:
            v = None
        print("absent" if v is None else v)
PY

# seen FILE GROUP KEY: a receiver's record of GROUP (n, ttl, from).
seen() {
  "$PY" -c 'import json, sys
try:
    d = json.load(open(sys.argv[1]))[sys.argv[2]]
except (OSError, ValueError, KeyError):
    d = {"n": 0, "ttl": [], "from": []}
v = d[sys.argv[3]]
print(" ".join(map(str, v)) if isinstance(v, list) else v)' "$1" "$2" "$3"
}
# until_seen FILE GROUP MIN TIMEOUT: waits for MIN datagrams of GROUP.
until_seen() {
  local deadline=$((SECONDS + $4))
  until (($(seen "$1" "$2" n) >= $3)); do
    ((SECONDS < deadline)) || fail "$2: $(seen "$1" "$2" n) datagrams at $1 within $4 s, want $3"
    sleep 0.1
  done
}
# metric NS URL NAME LABEL=VALUE...: a sample of nonstopd's /metrics in NS.
metric() {
  local ns=$1
  shift
  ip netns exec "$ns" "$PY" "$WORK/mc.py" metric "$@"
}
# until_metric NS URL NAME OP VALUE TIMEOUT LABEL=VALUE...
until_metric() {
  local ns=$1 url=$2 name=$3 op=$4 want=$5 timeout=$6 v deadline
  shift 6
  deadline=$((SECONDS + timeout))
  while :; do
    v=$(metric "$ns" "$url" "$name" "$@")
    if [[ $v != absent ]] && "$PY" -c "import sys; sys.exit(0 if $v $op $want else 1)"; then
      echo "$v"
      return 0
    fi
    ((SECONDS < deadline)) || fail "$name{$*} $op $want not within $timeout s (last: $v)"
    sleep 0.1
  done
}

started=$SECONDS
# --- 1. outputs: ttl, iface, loop --------------------------------------------
echo "-- 1. multicast outputs from namespace tx"
G16=239.77.1.1 GDEF=239.77.1.2 GROUTE=239.77.1.3
cat >"$WORK/out.toml" <<TOML
[[channel]]
id = "mc"
video = { width = 320, height = 240, framerate = 25 }

[[channel.input]]
id = "bars"
uri = "test://smpte"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 300
keyframe_interval = "1s"

[[channel.output]]
id = "ttl16"
uri = "udp://$G16:5001?ttl=16&iface=tx0&loop=false"

[[channel.output]]
id = "default-ttl"
uri = "udp://$GDEF:5002?iface=tx0"

[[channel.output]]
id = "routed"
uri = "udp://$GROUTE:5003?ttl=8"
TOML
"$NONSTOPD" check "$WORK/out.toml" >/dev/null || fail "nonstopd check refuses the outputs' config"
window=12 # seconds each receiver listens (they stop by themselves)
spawn rx_recv ip netns exec "$RX" "$PY" "$WORK/mc.py" recv "$WORK/rx.json" "$window" \
  "$G16:5001@10.77.0.2" "$GDEF:5002@10.77.0.2" "$GROUTE:5003@10.77.0.2"
spawn nx_recv ip netns exec "$NX" "$PY" "$WORK/mc.py" recv "$WORK/nx.json" "$window" \
  "$G16:5001@10.78.0.2" "$GDEF:5002@10.78.0.2" "$GROUTE:5003@10.78.0.2"
spawn tx_recv ip netns exec "$TX" "$PY" "$WORK/mc.py" recv "$WORK/tx.json" "$window" \
  "$G16:5001@10.77.0.1" "$GDEF:5002@10.77.0.1"
# The receivers have joined once they wrote their first record.
for f in rx nx tx; do
  deadline=$((SECONDS + 5))
  until [[ -s $WORK/$f.json ]]; do
    ((SECONDS < deadline)) || fail "the receiver in $f did not start"
    sleep 0.05
  done
done
spawn tx_daemon ip netns exec "$TX" "$NONSTOPD" --config "$WORK/out.toml" --no-dbus --metrics "" \
  2>"$WORK/tx-nonstopd.log"
# 100 datagrams of 7 TS packets: about 3 s of this stream.
until_seen "$WORK/rx.json" "$G16" 100 "$((window - 4))"
until_seen "$WORK/rx.json" "$GDEF" 100 2
until_seen "$WORK/nx.json" "$GROUTE" 100 2
until_seen "$WORK/tx.json" "$GDEF" 100 2
# Listened 1 s more: what should not arrive had the same time as what did.
sleep 1
kill_group "$tx_daemon"
[[ $(seen "$WORK/rx.json" "$G16" ttl) == 16 ]] ||
  fail "ttl=16: rx saw TTL $(seen "$WORK/rx.json" "$G16" ttl)"
[[ $(seen "$WORK/rx.json" "$GDEF" ttl) == 1 ]] ||
  fail "no ttl: rx saw TTL $(seen "$WORK/rx.json" "$GDEF" ttl), want udpsink's default 1"
[[ $(seen "$WORK/nx.json" "$GROUTE" ttl) == 8 ]] ||
  fail "ttl=8 (routed): nx saw TTL $(seen "$WORK/nx.json" "$GROUTE" ttl)"
echo "   rx: $G16 (ttl=16&iface=tx0) $(seen "$WORK/rx.json" "$G16" n) datagrams at TTL 16;" \
  "$GDEF (iface=tx0) $(seen "$WORK/rx.json" "$GDEF" n) at TTL 1"
n=$(seen "$WORK/rx.json" "$GROUTE" n)
((n == 0)) || fail "$GROUTE (no iface) reached rx ($n datagrams): the route points elsewhere"
n=$(seen "$WORK/nx.json" "$G16" n)
((n == 0)) || fail "$G16 (iface=tx0) went out the routed interface too ($n datagrams at nx)"
echo "   $GROUTE (no iface, ttl=8): 0 datagrams at rx, $(seen "$WORK/nx.json" "$GROUTE" n) at nx (the route) at TTL 8"
n=$(seen "$WORK/tx.json" "$G16" n)
((n == 0)) || fail "$G16 has loop=false, yet a receiver on tx got $n datagrams"
echo "   on tx itself: $G16 (loop=false) 0 datagrams, $GDEF (loop by default) $(seen "$WORK/tx.json" "$GDEF" n)"
for p in "$rx_recv" "$nx_recv" "$tx_recv"; do kill_group "$p"; done

# --- 2. input: source-specific multicast --------------------------------------
echo "-- 2. source-specific multicast inputs (IPv4 and IPv6) in namespace rx"
SSM=232.77.0.1 SSM6=ff3e::8000:77
mport=9464
URL="http://127.0.0.1:$mport"
cat >"$WORK/in.toml" <<TOML
[[channel]]
id = "ssm"
video = { width = 320, height = 240, framerate = 25 }
timeout = "500ms"
return_after = "1s"
backoff = { initial = "300ms", max = "1s" }

[[channel.input]]
id = "primary"
uri = "udp://@$SSM:5010?source=10.77.0.1&iface=rx0"

[[channel.input]]
id = "primary6"
uri = "udp://@[$SSM6]:5012?source=fd77::1&iface=rx0"

[[channel.input]]
id = "backup"
uri = "test://smpte"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 300
TOML
spawn rx_daemon ip netns exec "$RX" "$NONSTOPD" --config "$WORK/in.toml" --no-dbus \
  --metrics "127.0.0.1:$mport" 2>"$WORK/rx-nonstopd.log"
until_metric "$RX" "$URL" nonstop_channel_active_input == 1 20 channel=ssm input=backup >/dev/null
# Any-source receivers in rx: the wrong senders' datagrams do arrive.
spawn any_recv ip netns exec "$RX" "$PY" "$WORK/mc.py" recv "$WORK/any.json" 30 \
  "$SSM:5010@10.77.0.2" "[$SSM6]:5012@rx0"
deadline=$((SECONDS + 5))
until [[ -s $WORK/any.json ]]; do
  ((SECONDS < deadline)) || fail "the any-source receiver did not start"
  sleep 0.05
done
echo "   the wrong sources (10.77.0.3, fd77::3) send"
spawn wrong ip netns exec "$TX" "$TS_SENDER" ball 320x240 udpsink host="$SSM" port=5010 \
  multicast-iface=tx0 bind-address=10.77.0.3 ttl-mc=4
spawn wrong6 ip netns exec "$TX" "$TS_SENDER" ball 320x240 udpsink host="$SSM6" port=5012 \
  multicast-iface=tx0 bind-address=fd77::3 ttl-mc=4
until_seen "$WORK/any.json" "$SSM" 150 10
until_seen "$WORK/any.json" "$SSM6" 150 5
[[ $(seen "$WORK/any.json" "$SSM" from) == 10.77.0.3 ]] || fail "datagrams from $(seen "$WORK/any.json" "$SSM" from)"
[[ $(seen "$WORK/any.json" "$SSM6" from) == fd77::3 ]] || fail "datagrams from $(seen "$WORK/any.json" "$SSM6" from)"
b=$(metric "$RX" "$URL" nonstop_input_received_bytes_total channel=ssm input=primary)
b6=$(metric "$RX" "$URL" nonstop_input_received_bytes_total channel=ssm input=primary6)
a=$(metric "$RX" "$URL" nonstop_channel_active_input channel=ssm input=backup)
[[ $b == 0.0 && $b6 == 0.0 && $a == 1.0 ]] ||
  fail "the SSM inputs received $b and $b6 bytes from the wrong sources (backup on air: $a)"
echo "   $(seen "$WORK/any.json" "$SSM" n) and $(seen "$WORK/any.json" "$SSM6" n) datagrams from" \
  "10.77.0.3 and fd77::3 reached rx; the inputs received $b and $b6 bytes; backup on air"
echo "   the right sources (10.77.0.1, fd77::1) send too"
spawn right ip netns exec "$TX" "$TS_SENDER" smpte 320x240 udpsink host="$SSM" port=5010 \
  multicast-iface=tx0 bind-address=10.77.0.1 ttl-mc=4
spawn right6 ip netns exec "$TX" "$TS_SENDER" smpte 320x240 udpsink host="$SSM6" port=5012 \
  multicast-iface=tx0 bind-address=fd77::1 ttl-mc=4
until_metric "$RX" "$URL" nonstop_channel_active_input == 1 15 channel=ssm input=primary >/dev/null
b=$(until_metric "$RX" "$URL" nonstop_input_received_bytes_total '>' 0 1 channel=ssm input=primary)
b6=$(until_metric "$RX" "$URL" nonstop_input_received_bytes_total '>' 0 5 channel=ssm input=primary6)
until_metric "$RX" "$URL" nonstop_input_up == 1 5 channel=ssm input=primary6 >/dev/null
echo "   primary on air, $b bytes received; primary6 up, $b6 bytes received"
kill -TERM "$rx_daemon"
wait_exit "$rx_daemon" 10 || fail "nonstopd in rx did not stop cleanly"
for p in "$wrong" "$wrong6" "$right" "$right6" "$any_recv"; do kill_group "$p"; done
echo "   took $((SECONDS - started)) s"
echo "PASS udp_multicast"
