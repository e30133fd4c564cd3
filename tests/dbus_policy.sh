#!/usr/bin/env bash
# The system bus policy, packaging/org.nonstop.Supervisor1.conf, on a
# private dbus-daemon with system-bus semantics (system.conf's default
# policy: method calls denied unless a file in system.d opens them) that
# includes the policy file as shipped. nonstopd (as root) owns the name;
# an unprivileged caller (uid nobody, gid nogroup, no other groups) may
# introspect, read properties, call GetChannel and Peer, and receives the
# signals, but every call that changes something (SwitchTo, SetMode,
# RestartInput, RestartOutput, Start, Stop, Drill, InsertCue, ScheduleCue,
# Reload, Properties.Set) and owning the name are refused by the bus with
# AccessDenied, and change nothing. Root may switch. Then, with the user "nonstop" and the group
# "nonstop-operators" mapped to existing stand-ins (unless the host has
# them: the package creates them), a member of the operators' group may
# switch and the service user may own the name. A broken policy file stops
# dbus-daemon from starting.
# Needs root (to call as other users with setpriv).
source "$(dirname "$0")/common.bash"

((EUID == 0)) || fail "run as root: the test calls as nobody and other users via setpriv"
for tool in dbus-daemon busctl dbus-send gdbus setpriv; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
cargo build --release --quiet -p nonstop-supervisor

POLICY="$ROOT/packaging/org.nonstop.Supervisor1.conf"
SVC=org.nonstop.Supervisor1
MGR=/org/nonstop/Supervisor1
CH=$MGR/channel/pol
CHIF=$SVC.Channel
# Other users must reach the bus socket inside $WORK (mktemp -d is 0700).
chmod 755 "$WORK"
ADDR="unix:path=$WORK/bus.sock"

# wait_for SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds;
# returns 1 once SECONDS have passed.
wait_for() {
  local deadline=$(($(date +%s%N) + $1 * 1000000000))
  shift
  until "$@"; do
    (($(date +%s%N) < deadline)) || return 1
    sleep 0.05
  done
}

# The callers. nobody: no privileges at all.
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
as_root() { "$@"; }

# bus_conf NAME INCLUDE: $WORK/NAME.conf, a system-type bus on
# $WORK/NAME.sock with the default policy of /usr/share/dbus-1/system.conf,
# and INCLUDE (XML) where system.conf includes system.d. No <user>: it runs
# as whoever starts it (root); no <fork>, no activation, no syslog.
bus_conf() {
  cat >"$WORK/$1.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$WORK/$1.sock</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  $2
</busconfig>
XML
}

# start_bus NAME: starts dbus-daemon on $WORK/NAME.conf (pid in $bus, stderr
# in $WORK/NAME.err); returns 1 if it exits instead of printing its address
# (within 10 s).
start_bus() {
  spawn bus dbus-daemon --config-file="$WORK/$1.conf" --nofork --print-address \
    >"$WORK/$1.addr" 2>"$WORK/$1.err"
  bus_up() { [[ -s $WORK/$1.addr ]] || ! kill -0 "$bus" 2>/dev/null; }
  wait_for 10 bus_up "$1" || fail "dbus-daemon ($1) neither started nor exited within 10 s"
  [[ -s $WORK/$1.addr ]] && kill -0 "$bus" 2>/dev/null
}

# bus_complaints NAME [FROM_LINE]: what dbus-daemon wrote to stderr (after
# line FROM_LINE) besides these; anything is a problem in the policy. (It
# warns about the user nonstop and the group nonstop-operators when the
# host has none; the rules for them are then inactive, which the stand-in
# part below makes up for.)
bus_complaints() {
  local ok='Failed to set fd limit|\[system\] Reloaded configuration$'
  ok+='|Unknown (username "nonstop"|group "nonstop-operators") in message bus configuration file'
  tail -n +"$((${2:-0} + 1))" "$WORK/$1.err" | grep -v -E "$ok" || true
}

# --- The policy file parses ---------------------------------------------------
# A file in an <includedir> that does not parse is skipped with a message
# ("Encountered error ... while parsing"): the bus starts without it. An
# <include>d file must parse, or the bus does not start: that is the check.
echo "-- the policy parses (dbus-daemon <include>s it)"
cp "$POLICY" "$WORK/good.xml"
bus_conf good "<include>$WORK/good.xml</include>"
start_bus good || { cat "$WORK/good.err" >&2; fail "dbus-daemon does not start with the policy"; }
odd=$(bus_complaints good)
[[ -z $odd ]] || fail "dbus-daemon complains about the policy: $odd"
kill_group "$bus"
echo "   dbus-daemon started with it"
# The check has teeth: the same file without </busconfig> stops the bus.
sed '/<\/busconfig>/d' "$POLICY" >"$WORK/bad.xml"
bus_conf bad "<include>$WORK/bad.xml</include>"
start_bus bad && fail "dbus-daemon started with a truncated policy file"
echo "   truncated: dbus-daemon exits: $(grep -m1 -o 'Failed to start message bus.*' "$WORK/bad.err")"

echo "-- private system bus with the policy in its system.d"
mkdir "$WORK/bus.d"
cp "$POLICY" "$WORK/bus.d/"
bus_conf bus "<includedir>$WORK/bus.d</includedir>"
start_bus bus || { cat "$WORK/bus.err" >&2; fail "dbus-daemon did not start"; }
[[ -S $WORK/bus.sock ]] || fail "no bus socket at $WORK/bus.sock"
odd=$(bus_complaints bus)
[[ -z $odd ]] || fail "dbus-daemon complains about the configuration: $odd"
echo "   up at $(cat "$WORK/bus.addr")"

# --- nonstopd on the bus ------------------------------------------------------
port=$(free_port)
cat >"$WORK/ch.toml" <<TOML
[[channel]]
id = "pol"
video = { width = 320, height = 240, framerate = 25 }

[[channel.input]]
id = "ball"
uri = "test://ball"

[[channel.input]]
id = "smpte"
uri = "test://smpte"

[channel.encoder]
preset = "ultrafast"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$port"
TOML
log="$WORK/nonstopd.log"
# `--system`, as the unit runs it, on this private system-type bus (found
# the way every D-Bus library finds the system bus: the environment).
RUST_LOG=info DBUS_SYSTEM_BUS_ADDRESS="$ADDR" spawn daemon "$NONSTOPD" --config "$WORK/ch.toml" --system 2>"$log"

# prop AS PATH IFACE NAME: the property as busctl prints it (`s "on-air"`).
prop() { "$1" busctl --address="$ADDR" get-property "$SVC" "$2" "$3" "$4"; }
active_is() { [[ $(prop as_root "$CH" "$CHIF" ActiveInput 2>/dev/null) == "s \"$1\"" ]]; }

echo "-- waiting for nonstopd to own $SVC and put ball on air"
named() { busctl --address="$ADDR" status "$SVC" >/dev/null 2>&1; }
wait_for 20 named || { tail -n 20 "$log" >&2; fail "nonstopd did not get the name $SVC within 20 s"; }
wait_for 20 active_is ball || { tail -n 20 "$log" >&2; fail "ball not on air within 20 s"; }
owner_uid=$(busctl --address="$ADDR" status "$SVC" | sed -n 's/^UID=//p')
[[ $owner_uid == 0 ]] || fail "the name is owned by uid $owner_uid, want 0 (root)"
echo "   owned by uid 0; ActiveInput ball"

# --- What everyone may do -----------------------------------------------------
echo "-- nobody reads"
# read DESCRIPTION REGEX CMD...: CMD (run as nobody) succeeds and prints
# something matching REGEX.
read_ok() {
  local what=$1 re=$2 out
  shift 2
  out=$(as_nobody "$@" 2>&1) || fail "nobody: $what failed: $out"
  grep -q -E -- "$re" <<<"$out" || fail "nobody: $what printed $out, want /$re/"
  echo "   nobody: $what → $(head -n 1 <<<"$out" | cut -c 1-70)"
}
bc=(busctl --address="$ADDR")
read_ok "Version" '^s "[0-9]' "${bc[@]}" get-property "$SVC" "$MGR" "$SVC" Version
read_ok "StartedAt" '^t [1-9][0-9]*$' "${bc[@]}" get-property "$SVC" "$MGR" "$SVC" StartedAt
read_ok "Channels" "^ao 1 \"$CH\"\$" "${bc[@]}" get-property "$SVC" "$MGR" "$SVC" Channels
read_ok "GetChannel pol" "^o \"$CH\"\$" "${bc[@]}" call "$SVC" "$MGR" "$SVC" GetChannel s pol
read_ok "channel State" '^s "(starting|on-air|degraded|off-air)"$' \
  "${bc[@]}" get-property "$SVC" "$CH" "$CHIF" State
read_ok "channel Inputs" '^a\(sssasttt\) 2 "ball" "test://ball" .* "smpte" "test://smpte"' \
  "${bc[@]}" get-property "$SVC" "$CH" "$CHIF" Inputs
# busctl introspect: Introspectable.Introspect, then Properties.GetAll.
read_ok "introspect + GetAll" '^\.SwitchTo +method' "${bc[@]}" introspect "$SVC" "$CH" "$CHIF"
read_ok "Properties.GetAll" '"ActiveInput" s "ball"' \
  "${bc[@]}" call "$SVC" "$CH" org.freedesktop.DBus.Properties GetAll s "$CHIF"
read_ok "Peer.Ping" '^$' "${bc[@]}" call "$SVC" "$MGR" org.freedesktop.DBus.Peer Ping
# A read the bus lets through reaches nonstopd, whose own errors come back.
out=$(as_nobody "${bc[@]}" call "$SVC" "$MGR" "$SVC" GetChannel s nosuch 2>&1) &&
  fail "GetChannel nosuch succeeded: $out"
grep -q 'no channel "nosuch"' <<<"$out" ||
  fail "GetChannel nosuch: want nonstopd's NoSuchChannel, got: $out"
echo "   nobody: GetChannel nosuch → nonstopd's NoSuchChannel ($out)"

# --- What only root and the operators' group may do --------------------------
# send AS ARGS...: dbus-send --print-reply to nonstopd as AS; prints its
# output (the error name for a failed call) and returns its status.
send() {
  local who=$1
  shift
  "$who" dbus-send --bus="$ADDR" --print-reply --reply-timeout=5000 --dest="$SVC" "$@" 2>&1
}
# denied AS WHAT ARGS...: the bus refuses the call with AccessDenied.
denied() {
  local who=$1 what=$2 out
  shift 2
  out=$(send "$who" "$@") && fail "${who#as_}: $what went through: $out"
  grep -q '^Error org.freedesktop.DBus.Error.AccessDenied: Rejected send message' <<<"$out" ||
    fail "${who#as_}: $what: want AccessDenied from the bus, got: $out"
  echo "   ${who#as_}: $what → AccessDenied"
}
state() {
  local p
  for p in State Mode ActiveInput Switches; do
    printf '%s=%s ' "$p" "$(prop as_root "$CH" "$CHIF" $p)"
  done
}
mutating() {
  local who=$1
  denied "$who" SwitchTo "$CH" "$CHIF.SwitchTo" string:smpte
  denied "$who" SetMode "$CH" "$CHIF.SetMode" string:manual
  denied "$who" RestartInput "$CH" "$CHIF.RestartInput" string:ball
  denied "$who" RestartOutput "$CH" "$CHIF.RestartOutput" string:udp
  denied "$who" Start "$CH" "$CHIF.Start"
  denied "$who" Stop "$CH" "$CHIF.Stop"
  denied "$who" Drill "$CH" "$CHIF.Drill" string:input-stall string:ball uint64:1000
  denied "$who" InsertCue "$CH" "$CHIF.InsertCue" string:splice-out uint64:30000 uint64:4000
  denied "$who" ScheduleCue "$CH" "$CHIF.ScheduleCue" string:splice-in uint64:0 string:2030-01-01T00:00:00Z
  denied "$who" Reload "$MGR" "$SVC.Reload"
  denied "$who" Properties.Set "$CH" org.freedesktop.DBus.Properties.Set \
    string:"$CHIF" string:Mode variant:string:manual
}
# request_name AS: RequestName($SVC, DO_NOT_QUEUE) on the bus as AS.
request_name() {
  "$1" dbus-send --bus="$ADDR" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.RequestName string:"$SVC" uint32:4 2>&1
}

echo "-- nobody may change nothing"
before=$(state)
log_at=$(wc -l <"$log")
mutating as_nobody
out=$(request_name as_nobody) && fail "nobody: RequestName went through: $out"
grep -q "^Error org.freedesktop.DBus.Error.AccessDenied: .* not allowed to own the service" <<<"$out" ||
  fail "nobody: RequestName: want AccessDenied, got: $out"
echo "   nobody: RequestName $SVC → AccessDenied"
# No wait needed: every call above has had its answer (dbus-send waits for
# it), and nonstopd answers a method only once it has acted on it.
after=$(state)
[[ $after == "$before" ]] ||
  fail "the refused calls changed the channel: before: $before; after: $after"
echo "   channel unchanged: $after"
acted=$(tail -n +"$((log_at + 1))" "$log" |
  grep -E 'requested|mode set|switched|drill|stopping|stopped|reload' || true)
[[ -z $acted ]] || fail "nonstopd acted on a refused call: $acted"

echo "-- root switches; nobody receives the signal"
spawn mon setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
  gdbus monitor --address "$ADDR" --dest "$SVC" >"$WORK/mon.txt" 2>&1
watching() { grep -q "is owned by" "$WORK/mon.txt"; }
wait_for 10 watching || { cat "$WORK/mon.txt" >&2; fail "gdbus monitor (as nobody) did not start"; }
out=$(send as_root "$CH" "$CHIF.SwitchTo" string:smpte) || fail "root: SwitchTo smpte failed: $out"
echo "   root: SwitchTo smpte → ok"
wait_for 10 active_is smpte || fail "ActiveInput is not smpte 10 s after root's SwitchTo"
got_signal() { grep -q "$CHIF.InputSwitched ('ball', 'smpte'," "$WORK/mon.txt"; }
wait_for 10 got_signal ||
  { cat "$WORK/mon.txt" >&2; fail "nobody did not receive InputSwitched ball → smpte"; }
echo "   nobody received: $(grep -o "$CHIF.InputSwitched.*" "$WORK/mon.txt" | head -n 1)"
kill_group "$mon"
# Set passes the bus for root and reaches nonstopd, which has no writable
# property.
out=$(send as_root "$CH" org.freedesktop.DBus.Properties.Set \
  string:"$CHIF" string:Mode variant:string:auto) &&
  fail "root: Properties.Set Mode went through: $out"
grep -q AccessDenied <<<"$out" && fail "root: Properties.Set refused by the bus: $out"
echo "   root: Properties.Set → passes the bus, nonstopd says: $(head -n 1 <<<"$out")"

# --- The operator group and the service user, by stand-ins --------------------
# Unless the host has them, the user "nonstop" and the group
# "nonstop-operators" of the policy are mapped to existing ones (only those
# two names change) and the bus reloads.
group=nonstop-operators user=nonstop
getent group nonstop-operators >/dev/null || group=users
getent passwd nonstop >/dev/null || user=daemon
gid=$(getent group "$group" | cut -d: -f3)
[[ -n $gid ]] || fail "no group $group for the operator stand-in"
getent passwd "$user" >/dev/null || fail "no user $user for the service user stand-in"
echo "-- operator group: $group (gid $gid), service user: $user"
sed -e "s/group=\"nonstop-operators\"/group=\"$group\"/" -e "s/user=\"nonstop\"/user=\"$user\"/" "$POLICY" \
  >"$WORK/bus.d/$(basename "$POLICY")"
n=$(diff "$POLICY" "$WORK/bus.d/$(basename "$POLICY")" | grep -c '^>' || true)
want=0
[[ $group == nonstop-operators ]] || ((want += 1))
[[ $user == nonstop ]] || ((want += 1))
((n == want)) || fail "mapping the names changed $n lines of the policy, want $want"
err_at=$(wc -l <"$WORK/bus.err")
busctl --address="$ADDR" call org.freedesktop.DBus /org/freedesktop/DBus \
  org.freedesktop.DBus ReloadConfig ||
  fail "the bus did not reload its configuration"
odd=$(bus_complaints bus "$err_at")
[[ -z $odd ]] || fail "dbus-daemon complains about the reloaded configuration: $odd"

as_operator() { setpriv --reuid=nobody --regid=nogroup --groups="$gid" -- "$@"; }
as_service_user() { setpriv --reuid="$user" --regid=nogroup --clear-groups -- "$@"; }
out=$(send as_operator "$CH" "$CHIF.SwitchTo" string:ball) ||
  fail "operator: SwitchTo ball failed: $out"
wait_for 10 active_is ball || fail "ActiveInput is not ball 10 s after the operator's SwitchTo"
echo "   operator (nobody + group $group): SwitchTo ball → ok, ball on air"
out=$(send as_operator "$CH" "$CHIF.SetMode" string:auto) || fail "operator: SetMode auto failed: $out"
echo "   operator: SetMode auto → ok"
out=$(request_name as_operator) && fail "operator: RequestName went through: $out"
grep -q "^Error org.freedesktop.DBus.Error.AccessDenied" <<<"$out" ||
  fail "operator: RequestName: want AccessDenied, got: $out"
echo "   operator: RequestName $SVC → AccessDenied"
denied as_nobody "SwitchTo (after the reload)" "$CH" "$CHIF.SwitchTo" string:smpte
# Allowed to own; nonstopd has it, so DO_NOT_QUEUE answers 3 (EXISTS).
out=$(request_name as_service_user) || fail "service user $user: RequestName refused: $out"
grep -q 'uint32 3$' <<<"$out" || fail "service user $user: RequestName: want 3 (EXISTS), got: $out"
echo "   service user ($user): RequestName $SVC → allowed (3: already owned by nonstopd)"

echo "-- SIGTERM"
kill -TERM "$daemon"
gone() { local s; s=$(ps -o stat= -p "$1") || return 0; [[ $s == Z* ]]; }
wait_for 10 gone "$daemon" || fail "nonstopd still running 10 s after SIGTERM"
rc=0
wait_exit "$daemon" || rc=$?
((rc == 0)) || { tail -n 20 "$log" >&2; fail "nonstopd exited with $rc"; }
echo "PASS dbus_policy"
