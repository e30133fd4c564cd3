#!/usr/bin/env bash
# End to end: the fleet on an etcd that wants credentials. Two etcd servers
# on 127.0.0.1: one with authentication (a user and password), one with TLS
# and client certificates (a CA, server and client certificates made here
# with openssl). nonstopd with the right [fleet] credentials leads its
# channel; with a wrong password, or without a client certificate, it says
# why in its log, never goes on air, and keeps running.
source "$(dirname "$0")/common.bash"
command -v etcd >/dev/null || { skipped "fleet_etcd_security: no etcd (apt-get install etcd-server)"; exit 0; }
cargo build --release --quiet -p nonstop-supervisor

etcd_up() { # NAME CLIENT-URL PEER-PORT EXTRA-FLAGS...
  local name=$1 url=$2 peer=$3
  shift 3
  spawn "pid_$name" etcd --name "$name" --data-dir "$WORK/$name" \
    --listen-client-urls "$url" --advertise-client-urls "$url" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$name=http://127.0.0.1:$peer" --initial-cluster-state new \
    --logger zap --log-outputs stderr "$@" 2>"$WORK/$name.log"
}
ctl() { ETCDCTL_API=3 etcdctl "$@"; }
healthy() {
  for _ in $(seq 100); do ctl "$@" endpoint health >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "etcd ($*) not healthy: $(tail -3 "$WORK"/*.log)"
}

box() { # NAME FLEET-TABLE-LINES
  cat >"$WORK/$1.toml" <<TOML
[fleet]
node = "$1"
$2

[[channel]]
id = "news"
video = { width = 320, height = 180, framerate = 25 }
fleet = { replicas = 1 }

[[channel.input]]
id = "slate"
uri = "slate://colour/blue"

[channel.encoder]
preset = "ultrafast"
video_bitrate = 200

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$(free_port)"
TOML
  "$NONSTOPD" check "$WORK/$1.toml" >/dev/null || fail "$1: nonstopd check refused the config"
  RUST_LOG=info spawn "pid_$1" "$NONSTOPD" --config "$WORK/$1.toml" --no-dbus --metrics "" 2>"$WORK/$1.log"
}

echo "-- etcd with authentication"
c=$(free_port)
etcd_up auth "http://127.0.0.1:$c" "$(free_port)"
healthy --endpoints "http://127.0.0.1:$c"
ctl --endpoints "http://127.0.0.1:$c" user add root:s3cret-pw >/dev/null
ctl --endpoints "http://127.0.0.1:$c" user grant-role root root >/dev/null
ctl --endpoints "http://127.0.0.1:$c" auth enable >/dev/null 2>&1 || fail "etcd auth enable failed"
ctl --endpoints "http://127.0.0.1:$c" get / >/dev/null 2>&1 && fail "etcd answers without credentials: auth is not on"
box good "endpoints = [\"http://127.0.0.1:$c\"]
prefix = \"/auth\"
username = \"root\"
password = \"s3cret-pw\""
box wrong "endpoints = [\"http://127.0.0.1:$c\"]
prefix = \"/auth2\"
username = \"root\"
password = \"not-it\""
wait_log "$WORK/good.log" 'fleet: good leads channel news' 20 >/dev/null
echo "   right password: leads"
line=$(wait_log "$WORK/wrong.log" 'fleet: cannot connect to etcd' 20)
grep -qiE 'authentication failed|invalid user ID or password' <<<"$line" || fail "the wrong password's error does not say why: $line"
sleep 2
grep -q 'leads channel\|output released' "$WORK/wrong.log" && fail "a box with a wrong password went on air"
kill -0 "$pid_wrong" || fail "the box with a wrong password exited"
grep -q 'not-it' "$WORK/wrong.log" && fail "the password was logged"
echo "   wrong password: said so, held, running, password not logged"

echo "-- etcd with TLS and client certificates"
pki=$WORK/pki
mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=nonstop test CA" \
  -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
cert() { # NAME EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf '%s\n' "$2") -out "$pki/$1.pem" 2>/dev/null
}
cert server "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
cert client "extendedKeyUsage=clientAuth"
t=$(free_port)
etcd_up tls "https://127.0.0.1:$t" "$(free_port)" \
  --cert-file "$pki/server.pem" --key-file "$pki/server.key" \
  --client-cert-auth --trusted-ca-file "$pki/ca.pem"
healthy --endpoints "https://127.0.0.1:$t" --cacert "$pki/ca.pem" --cert "$pki/client.pem" --key "$pki/client.key"
box tlsgood "endpoints = [\"https://127.0.0.1:$t\"]
prefix = \"/tls\"
ca = \"$pki/ca.pem\"
cert = \"$pki/client.pem\"
key = \"$pki/client.key\""
box tlsnocert "endpoints = [\"https://127.0.0.1:$t\"]
prefix = \"/tls2\"
ca = \"$pki/ca.pem\""
wait_log "$WORK/tlsgood.log" 'fleet: tlsgood leads channel news' 20 >/dev/null
echo "   CA and client certificate: leads"
wait_log "$WORK/tlsnocert.log" 'fleet: (cannot connect to etcd|cannot get a lease)' 20 >/dev/null
sleep 2
grep -q 'leads channel\|output released' "$WORK/tlsnocert.log" && fail "a box without a client certificate went on air"
kill -0 "$pid_tlsnocert" || fail "the box without a client certificate exited"
echo "   no client certificate: said so, held, running"
echo "PASS fleet_etcd_security"
