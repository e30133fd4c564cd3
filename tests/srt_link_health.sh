#!/usr/bin/env bash
# SRT link health (issue 17): an SRT caller input (srtsrc), an SRT listener
# input (nonstopd's own socket, libsrt's statistics) and an SRT output
# (srtsink), each through the chaos harness's impairment relay
# (tests/chaos/impair.py, both ways), with `[channel.srt] max_loss = 2` (%)
# and `max_rtt = "150ms"`.
#
# 1. Clean link: both links are in the channel's `Links` (D-Bus, through
#    nonstopctl), in /metrics and /api/status, with a round trip under
#    50 ms, no loss and no alarm.
# 2. The relays lose 8 % of the datagrams and delay each 100 ms, each way
#    (round trip ≥ 200 ms): every link raises `srt-loss` and `srt-rtt`
#    (log, webhook-free alert events, Links alarms) within 5 s of the
#    bound (+ the 5 s window); the output's sender counts what it lost
#    and resent.
# 3. The relays are clean again: every alarm clears.
source "$(dirname "$0")/common.bash"
cargo build --release --quiet -p nonstop-supervisor
for tool in gst-launch-1.0 curl dbus-daemon; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/bootstrap installs it)"
done
CTL="$ROOT/target/release/nonstopctl"
IMPAIR="$ROOT/tests/chaos/impair.py"
CH=links
in_src=$(free_port) in_relay=$(free_port) out_dst=$(free_port) out_relay=$(free_port) mport=$(free_port)
lis_port=$(free_port) lis_relay=$(free_port)
echo '{"loss": 0, "delay": 0}' >"$WORK/impair.json"
# The sender nonstopd calls, and the receiver it sends to: SRT listeners
# behind their relays. 1 s of SRT latency: the stream survives the loss.
spawn sender "$TS_SENDER" smpte 320x180 srtsink uri="srt://127.0.0.1:$in_src?mode=listener&latency=1000"
spawn receiver gst-launch-1.0 -q srtsrc uri="srt://127.0.0.1:$out_dst?mode=listener&latency=1000" ! fakesink
spawn relay_in "$PY" "$IMPAIR" "127.0.0.1:$in_relay" "127.0.0.1:$in_src" "$WORK/impair.json" 1 both
spawn relay_out "$PY" "$IMPAIR" "127.0.0.1:$out_relay" "127.0.0.1:$out_dst" "$WORK/impair.json" 2 both
# A contribution encoder calling nonstopd's listener input, through a relay.
spawn relay_lis "$PY" "$IMPAIR" "127.0.0.1:$lis_relay" "127.0.0.1:$lis_port" "$WORK/impair.json" 3 both
spawn caller "$TS_SENDER" ball 320x180 srtsink uri="srt://127.0.0.1:$lis_relay?mode=caller&latency=1000"

cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "$CH"
video = { width = 320, height = 180, framerate = 25 }

[channel.srt]
max_loss = 2
max_rtt = "150ms"

[[channel.input]]
id = "feed"
uri = "srt://127.0.0.1:$in_relay?mode=caller&latency=1000"

[[channel.input]]
id = "contrib"
uri = "srt://127.0.0.1:$lis_port?mode=listener&latency=1000"

[[channel.input]]
id = "slate"
uri = "slate://colour/blue"

[channel.encoder]
preset = "ultrafast"
keyframe_interval = "1s"

[[channel.output]]
id = "cdn"
uri = "srt://127.0.0.1:$out_relay?mode=caller&latency=1000"
TOML
"$NONSTOPD" check "$WORK/ch.toml" >"$WORK/check.txt" || { cat "$WORK/check.txt"; fail "the config does not check"; }
grep -q "SRT links alarmed: loss over 2 % or round trip over 150ms" "$WORK/check.txt" ||
  fail "check does not show the SRT bounds: $(cat "$WORK/check.txt")"
private_bus
log="$WORK/nonstopd.log"
RUST_LOG=info spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --address "$addr" --metrics "127.0.0.1:$mport" 2>"$log"

# links PYTHON-EXPR: the expression over `l` (the Links rows of nonstopctl
# status --json, by "kind id") holds; the rows are left in $WORK/links.json.
links() {
  "$CTL" --address "$addr" status "$CH" --json >"$WORK/links.json" 2>"$WORK/err" || return 1
  "$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))
l = {r["kind"] + " " + r["id"]: r for r in c.get("Links", [])}
sys.exit(0 if eval(sys.argv[2]) else 1)' "$WORK/links.json" "$1"
}
wait_links() {
  local deadline=$(($(date +%s) + $2))
  until links "$1"; do
    (($(date +%s) < deadline)) || fail "$3: $(cat "$WORK/links.json" "$WORK/err" 2>/dev/null | tail -40)"
    sleep 0.5
  done
}

echo "-- clean links: shown, fast, no loss, no alarm"
wait_log "$log" "switched .* → feed" 30 >/dev/null
wait_links 'len(l) == 3 and all(r["rtt_us"] < 50000 and r["loss_ppm"] == 0 and not r["alarms"] and r["packets"] > 0 for r in l.values())' 15 \
  "the three links are not there, clean"
"$PY" -c 'import json, sys
for r in json.load(open(sys.argv[1]))["Links"]:
    print("   %s %s: rtt %.1f ms, rate %.2f Mb/s, capacity %.0f Mb/s, %d packets" % (r["kind"], r["id"], r["rtt_us"] / 1000, r["rate_kbps"] / 1000, r["bandwidth_kbps"] / 1000, r["packets"]))' "$WORK/links.json"
"$CTL" --address "$addr" status "$CH" | grep -q "SRT LINK" || fail "nonstopctl status shows no SRT links"
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
for m in 'nonstop_srt_rtt_seconds{channel="links",link="input",id="feed"}' 'nonstop_srt_packets_total{channel="links",link="output",id="cdn"}' \
  'nonstop_srt_alarms_total{channel="links",link="output",id="cdn",kind="loss"} 0'; do
  grep -qF "$m" <<<"$metrics" || fail "/metrics has no $m"
done

echo "-- 8 % loss and 100 ms each way: loss and RTT alarms on both links"
echo '{"loss": 8, "delay": 100}' >"$WORK/impair.json"
impaired_at=$(now)
at=$(wc -l <"$log")
for end in "input id=feed" "input id=contrib" "output id=cdn"; do
  for kind in loss rtt; do
    line=$(wait_log "$log" "event=\"?link-alarm-raised\"? link=\"?${end% *}\"? ${end#* }.*alarm=srt-$kind" 20 "$at")
    # The bound is passed within a second or two (the 5 s loss window
    # fills), then held 5 s.
    within 5 "$("$PY" -c "print(round($(log_time "$line") - $impaired_at, 2))")" 12 "$end: srt-$kind raised after, s"
  done
done
wait_links 'all(sorted(r["alarms"]) == ["loss", "rtt"] and r["rtt_us"] >= 190000 and r["lost"] > 0 for r in l.values())' 5 \
  "Links does not show both alarms on every link"
links 'l["output cdn"]["retransmitted"] > 0 and l["input contrib"]["retransmitted"] > 0' ||
  fail "the output resent nothing, or the listener input got nothing again: $(cat "$WORK/links.json")"
"$PY" -c 'import json, sys
for r in json.load(open(sys.argv[1]))["Links"]:
    print("   %s %s: rtt %.1f ms, loss %.2f %% over 5 s, %d lost, %d resent, alarms %s" % (r["kind"], r["id"], r["rtt_us"] / 1000, r["loss_ppm"] / 1e4, r["lost"], r["retransmitted"], ",".join(r["alarms"])))' "$WORK/links.json"
links '"srt:loss" in next(i for i in json.load(open(sys.argv[1]))["Inputs"] if i["id"] == "feed")["alarms"]' ||
  fail "the input's alarms do not say srt:loss"
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
grep -qF 'nonstop_srt_alarms_total{channel="links",link="output",id="cdn",kind="rtt"} 1' <<<"$metrics" ||
  fail "the output's RTT alarm is not counted: $(grep nonstop_srt_alarms <<<"$metrics")"
curl -s "http://127.0.0.1:$mport/api/status" | "$PY" -c 'import json, sys
c = json.load(sys.stdin)["channels"][0]
assert all(sorted(l["alarms"]) == ["loss", "rtt"] for l in c["links"]) and len(c["links"]) == 3, c["links"]' ||
  fail "/api/status does not show the links' alarms"

echo "-- clean again: every alarm clears"
echo '{"loss": 0, "delay": 0}' >"$WORK/impair.json"
cleaned_at=$(now)
wait_links 'len(l) == 3 and all(not r["alarms"] for r in l.values())' 20 "the alarms did not clear"
echo "   cleared after $("$PY" -c "print(round($(now) - $cleaned_at, 1))") s (bound under again, held 5 s)"
kill -TERM "$daemon"
wait_exit "$daemon" 15 || fail "nonstopd did not stop cleanly"
echo "PASS srt_link_health"
