#!/usr/bin/env bash
# The Debian package, as an operator gets it: scripts/package builds
# nonstop_VERSION_ARCH.deb (release build), lintian reports no error, and
# `apt-get install ./nonstop_*.deb` installs the whole product:
# gst-inspect-1.0 finds nonstopswitch in the system plugin folder (no
# GST_PLUGIN_PATH) and gst-launch-1.0 runs it; `nonstopd check` passes on
# the shipped /etc/nonstop/nonstopd.toml; nonstopctl, its man pages and the
# completions are installed; systemd-analyze verify accepts the unit; the
# service user nonstop and the operators' group nonstop-operators exist, an
# operator cannot read the config and the service user can. The installed
# nonstopd, run as the service user, puts a channel on air with the plugin
# also installed; on a private system-type bus with the installed policy an
# operator may switch and a stranger may not. A local edit of the conffile
# survives remove and reinstall. `apt-get purge` leaves no file of the
# package, no /etc/nonstop and nothing under /var; the system users stay
# (as Debian does; docs/operations.md), and this test deletes the ones it
# caused to be created. Needs root (apt, setpriv). Purges at exit, pass or
# fail; leaves no nonstopd running.
source "$(dirname "$0")/common.bash"

((EUID == 0)) || fail "run as root: the test installs and purges the package"
for tool in apt-get dpkg-deb lintian gst-inspect-1.0 gst-launch-1.0 setpriv man dbus-daemon busctl; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/bootstrap)"
done
if dpkg-query -W -f='${Status}' nonstop 2>/dev/null | grep -q 'install ok'; then
  fail "the package nonstop is already installed on this machine; this test installs and purges it (apt-get purge nonstop first)"
fi

# What the machine had before, so that cleanup puts it back.
had_user=0 had_group=0 had_ops=0
getent passwd nonstop >/dev/null && had_user=1
getent group nonstop >/dev/null && had_group=1
getent group nonstop-operators >/dev/null && had_ops=1
installed=0
APT=(apt-get -y -q -o DPkg::Lock::Timeout=300)
cleanup() {
  local p
  exec 2>/dev/null
  for p in "${PIDS[@]}"; do kill -KILL -- "-$p" "$p" || true; done
  if ((installed)); then
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge nonstop >/dev/null || true
  fi
  if ((!had_user)) && getent passwd nonstop >/dev/null; then userdel nonstop || true; fi
  if ((!had_group)) && getent group nonstop >/dev/null; then groupdel nonstop || true; fi
  if ((!had_ops)) && getent group nonstop-operators >/dev/null; then groupdel nonstop-operators || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
# gst-inspect-1.0 and nonstopd (as root here) keep their plugin registry in
# $WORK, not in root's ~/.cache.
export GST_REGISTRY="$WORK/gst-registry.bin"
unset GST_PLUGIN_PATH GST_PLUGIN_PATH_1_0 GST_PLUGIN_SYSTEM_PATH GST_PLUGIN_SYSTEM_PATH_1_0
t_start=$(date +%s)

# --- Build --------------------------------------------------------------------
echo "-- scripts/package"
# apt's _apt user must read the .deb (mktemp -d is 0700).
chmod 755 "$WORK"
deb=$("$ROOT/scripts/package" --out "$WORK/deb" | tail -n 1)
[[ -f $deb ]] || fail "scripts/package printed no .deb path ($deb)"
version=$(dpkg-deb -f "$deb" Version)
arch=$(dpkg --print-architecture)
[[ $(basename "$deb") == "nonstop_${version}_${arch}.deb" ]] || fail "unexpected file name $(basename "$deb")"
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n 1)
[[ ${version%-*} == "$crate_version" ]] || fail "package version $version, workspace version $crate_version"
echo "   $(basename "$deb"): $(du -h "$deb" | cut -f1)"

depends=$(dpkg-deb -f "$deb" Depends)
for p in libgstreamer1.0-0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-plugins-ugly gstreamer1.0-libav libc6 libglib2.0-0; do
  grep -Eq "(^|, |\| )$p( |,|$)" <<<"$depends" || fail "Depends lacks $p: $depends"
done
grep -q -- '-dev\b' <<<"$depends" && fail "Depends names a -dev package: $depends"
[[ $(dpkg-deb -f "$deb" Recommends) == *etcd-client* ]] || fail "it does not recommend etcd-client"
echo "   Depends: $depends"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/nonstop/nonstopd.toml ||
  fail "/etc/nonstop/nonstopd.toml is not a conffile"

echo "-- lintian"
lintian --fail-on error --display-level '>=warning' "$deb" >"$WORK/lintian.txt" 2>&1 ||
  { cat "$WORK/lintian.txt" >&2; fail "lintian reports errors"; }
grep -q '^E: ' "$WORK/lintian.txt" && { cat "$WORK/lintian.txt" >&2; fail "lintian reports errors"; }
echo "   no error; $(grep -c '^W: ' "$WORK/lintian.txt" || true) warning(s)"
sed -n 's/^W: /   W: /p' "$WORK/lintian.txt"

# --- Install ------------------------------------------------------------------
echo "-- apt-get install ./$(basename "$deb")"
installed=1
(cd "$(dirname "$deb")" && "${APT[@]}" install "./$(basename "$deb")") >"$WORK/apt.log" 2>&1 ||
  { cat "$WORK/apt.log" >&2; fail "apt-get install failed"; }
dpkg-query -W -f='${Status} ${Version}\n' nonstop | grep -q "^install ok installed $version$" ||
  fail "nonstop $version is not installed: $(dpkg-query -W -f='${Status} ${Version}' nonstop)"
dpkg -L nonstop >"$WORK/files"
# The folders only this package has (the others, /usr/bin or /etc, stay at
# purge).
while read -r f; do
  [[ -d $f && $f != /. ]] || continue
  [[ $(dpkg -S "$f" 2>/dev/null) == "nonstop: $f" ]] && echo "$f"
done <"$WORK/files" >"$WORK/own-dirs"

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
plugin=/usr/lib/$multiarch/gstreamer-1.0/libgstnonstop.so
for f in /usr/bin/nonstopd /usr/bin/nonstopctl "$plugin" /lib/systemd/system/nonstopd.service \
  /usr/share/dbus-1/system.d/org.nonstop.Supervisor1.conf /usr/lib/sysusers.d/nonstop.conf \
  /etc/nonstop/nonstopd.toml /usr/share/man/man1/nonstopd.1.gz /usr/share/man/man1/nonstopctl.1.gz \
  /usr/share/man/man1/nonstopctl-switch.1.gz /usr/share/bash-completion/completions/nonstopctl \
  /usr/share/bash-completion/completions/nonstopd /usr/share/zsh/vendor-completions/_nonstopctl \
  /usr/share/zsh/vendor-completions/_nonstopd /usr/share/fish/vendor_completions.d/nonstopctl.fish \
  /usr/share/fish/vendor_completions.d/nonstopd.fish /usr/share/doc/nonstop/copyright \
  /usr/share/doc/nonstop/changelog.Debian.gz /usr/share/doc/nonstop/docs/operations.md.gz; do
  if ! grep -qx "$f" "$WORK/files" || [[ ! -e $f ]]; then fail "$f is not installed by the package"; fi
done
echo "   $(grep -c . "$WORK/files") paths, every one in place"

echo "-- the plugin, with no GST_PLUGIN_PATH"
gst-inspect-1.0 nonstopswitch >"$WORK/inspect.txt" 2>&1 || { cat "$WORK/inspect.txt" >&2; fail "gst-inspect-1.0 nonstopswitch failed"; }
# (With merged /usr, GStreamer may name it by /lib/...: the same file.)
loaded=$(awk '$1 == "Filename" { print $2; exit }' "$WORK/inspect.txt")
[[ -n $loaded && $(readlink -f "$loaded") == $(readlink -f "$plugin") ]] ||
  fail "nonstopswitch is not loaded from $plugin but from '$loaded'"
gst-inspect-1.0 nonstopwatchdog >/dev/null 2>&1 || fail "gst-inspect-1.0 nonstopwatchdog failed"
echo "   gst-inspect-1.0: nonstopswitch, nonstopwatchdog from $plugin"
timeout 30 gst-launch-1.0 -q videotestsrc num-buffers=50 ! \
  video/x-raw,format=I420,width=320,height=240,framerate=25/1 ! \
  nonstopswitch ! nonstopwatchdog ! fakesink sync=true >"$WORK/launch.txt" 2>&1 ||
  { cat "$WORK/launch.txt" >&2; fail "gst-launch-1.0 with nonstopswitch did not run to its end"; }
echo "   gst-launch-1.0 videotestsrc num-buffers=50 ! nonstopswitch ! nonstopwatchdog ! fakesink: ran to EOS"

echo "-- the binaries, man pages, completions"
nonstopd check /etc/nonstop/nonstopd.toml >"$WORK/check.txt" 2>&1 ||
  { cat "$WORK/check.txt" >&2; fail "nonstopd check /etc/nonstop/nonstopd.toml failed"; }
echo "   nonstopd check /etc/nonstop/nonstopd.toml: $(head -n 1 "$WORK/check.txt")"
out=$(nonstopctl --help) || fail "nonstopctl --help failed"
grep -q '^usage: nonstopctl' <<<"$out" || fail "nonstopctl --help does not print its usage: $out"
[[ $(nonstopd --version) == *"$crate_version"* ]] || fail "nonstopd --version: $(nonstopd --version), want $crate_version"
for page in nonstopctl nonstopd nonstopctl-switch nonstopd-check; do
  [[ $(man -w "$page") == "/usr/share/man/man1/$page.1.gz" ]] || fail "man -w $page: $(man -w "$page" 2>&1)"
done
out=$(MANWIDTH=80 man -P cat nonstopctl 2>/dev/null) || fail "man nonstopctl failed"
grep -q 'nonstopctl' <<<"$out" || fail "man nonstopctl does not render"
bash -c 'source /usr/share/bash-completion/completions/nonstopctl && complete -p nonstopctl' >/dev/null ||
  fail "the bash completion of nonstopctl does not load"
echo "   nonstopctl --help, man -w nonstopctl: $(man -w nonstopctl), bash completion loads"

echo "-- the unit"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/nonstopd.service >"$WORK/verify.txt" 2>&1 ||
    { cat "$WORK/verify.txt" >&2; fail "systemd-analyze verify rejects the unit"; }
  [[ -s $WORK/verify.txt ]] && sed 's/^/   verify: /' "$WORK/verify.txt"
  echo "   systemd-analyze verify: accepted"
else
  skipped "systemd-analyze verify (no systemd-analyze here)"
fi
[[ -z $(find /etc/systemd/system -name nonstopd.service 2>/dev/null) ]] || fail "the install enabled the unit"
echo "   not enabled by the install"

echo "-- the service user, the operators' group, the config's permissions"
getent passwd nonstop >/dev/null || fail "no user nonstop"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd nonstop)
[[ $(getent group "$gid" | cut -d: -f1) == nonstop ]] || fail "the primary group of nonstop is not nonstop"
((uid < 1000)) || fail "nonstop is not a system user (uid $uid)"
[[ $home == /var/lib/nonstop && $shell == */nologin ]] || fail "nonstop: home $home, shell $shell"
ops_gid=$(getent group nonstop-operators | cut -d: -f3)
[[ -n $ops_gid ]] || fail "no group nonstop-operators"
((ops_gid != gid)) || fail "the operators' group is the service's group"
[[ $(stat -c '%U:%G %a' /etc/nonstop/nonstopd.toml) == "root:nonstop 640" ]] ||
  fail "/etc/nonstop/nonstopd.toml is $(stat -c '%U:%G %a' /etc/nonstop/nonstopd.toml), want root:nonstop 640"
[[ $(stat -c '%U:%G %a' /etc/nonstop) == "root:nonstop 750" ]] ||
  fail "/etc/nonstop is $(stat -c '%U:%G %a' /etc/nonstop), want root:nonstop 750"
echo "   user nonstop (uid $uid, group nonstop $gid, $home, $shell); group nonstop-operators ($ops_gid)"
# An operator: an unprivileged user whose only group is nonstop-operators.
as_operator() { setpriv --reuid=nobody --regid=nogroup --groups="$ops_gid" -- "$@"; }
as_stranger() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
as_service() { setpriv --reuid=nonstop --regid=nonstop --init-groups -- "$@"; }
out=$(as_operator cat /etc/nonstop/nonstopd.toml 2>&1) && fail "an operator could read the config"
grep -q 'Permission denied' <<<"$out" || fail "an operator reading the config: $out"
echo "   operator (nobody + nonstop-operators): cat /etc/nonstop/nonstopd.toml → Permission denied"
as_service nonstopd check /etc/nonstop/nonstopd.toml >/dev/null 2>&1 ||
  fail "the service user cannot check the config"
echo "   service user: nonstopd check /etc/nonstop/nonstopd.toml → ok"

# --- The installed daemon, as the service user, on the installed policy --------
echo "-- /usr/bin/nonstopd as nonstop, on a system-type bus with the installed policy"
run=$WORK/run
mkdir -m 0755 "$run"
bus_conf=$run/bus.conf
cat >"$bus_conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$run/bus.sock</listen>
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
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>/usr/share/dbus-1/system.d</includedir>
</busconfig>
XML
spawn bus dbus-daemon --config-file="$bus_conf" --nofork --print-address >"$run/bus.addr" 2>"$run/bus.err"
for _ in $(seq 100); do [[ -S $run/bus.sock ]] && break; sleep 0.1; done
[[ -S $run/bus.sock ]] || { cat "$run/bus.err" >&2; fail "the private bus did not start"; }
addr="unix:path=$run/bus.sock"
! grep -q 'nonstop' "$run/bus.err" || fail "dbus-daemon complains about the installed policy: $(cat "$run/bus.err")"

port=$(free_port)
cat >"$run/ch.toml" <<EOF
[[channel]]
id = "pkg"
video = { width = 320, height = 240, framerate = 25 }

[[channel.input]]
id = "A"
uri = "test://ball?label=A"

[[channel.input]]
id = "B"
uri = "test://smpte?label=B"

[[channel.input]]
id = "slate"
uri = "slate://colour/black"

[channel.encoder]
preset = "ultrafast"

[[channel.output]]
id = "udp"
uri = "udp://127.0.0.1:$port"
EOF
chmod 644 "$run/ch.toml"
log=$run/nonstopd.log
# HOME and the registry where the unit would put them (the service's
# StateDirectory and CacheDirectory); here in $WORK.
mkdir -m 0755 "$run/home"
chown nonstop:nonstop "$run/home"
spawn daemon setpriv --reuid=nonstop --regid=nonstop --init-groups -- \
  env HOME="$run/home" XDG_CACHE_HOME="$run/home" GST_REGISTRY="$run/home/registry.bin" \
  /usr/bin/nonstopd --config "$run/ch.toml" --address "$addr" 2>"$log"
wait_log "$log" 'nonstopd running' 30 >/dev/null
wait_log "$log" 'channel on-air' 20 >/dev/null
grep -q -i 'panic\|already registered\|CRITICAL' "$log" && { cat "$log" >&2; fail "nonstopd complains with the plugin installed"; }
echo "   nonstopd (as nonstop) running, channel pkg on air, its elements and the installed plugin side by side"
out=$(as_stranger nonstopctl --address "$addr" switch pkg B 2>&1) && fail "a stranger could switch: $out"
grep -q -i 'AccessDenied\|denied' <<<"$out" || fail "a stranger's switch: want access denied, got: $out"
echo "   stranger: nonstopctl switch pkg B → $(head -n 1 <<<"$out" | cut -c1-60)..."
out=$(as_operator nonstopctl --address "$addr" switch pkg B 2>&1) || fail "an operator could not switch: $out"
wait_log "$log" 'switched A → B' 10 >/dev/null
echo "   operator: nonstopctl switch pkg B → ok, B on air"
out=$(as_operator nonstopctl --address "$addr" status 2>&1) || fail "an operator's nonstopctl status: $out"
echo "   operator: nonstopctl status → $(grep -m1 pkg <<<"$out")"
kill -TERM "$daemon"
rc=0
wait_exit "$daemon" 15 || rc=$?
((rc == 0)) || { tail -n 20 "$log" >&2; fail "nonstopd exited with $rc after SIGTERM"; }
kill_group "$bus"
echo "   SIGTERM: exit 0"

# --- Conffile, remove, purge --------------------------------------------------
echo "-- the conffile across remove and reinstall"
echo '# local edit (tests/package.sh)' >>/etc/nonstop/nonstopd.toml
"${APT[@]}" remove nonstop >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; fail "apt-get remove failed"; }
[[ ! -e /usr/bin/nonstopd && ! -e $plugin ]] || fail "apt-get remove left the binaries"
grep -q 'local edit' /etc/nonstop/nonstopd.toml || fail "apt-get remove did not keep the edited config"
(cd "$(dirname "$deb")" && "${APT[@]}" install "./$(basename "$deb")") >"$WORK/apt.log" 2>&1 ||
  { cat "$WORK/apt.log" >&2; fail "the reinstall failed"; }
grep -q 'local edit' /etc/nonstop/nonstopd.toml || fail "the reinstall replaced the edited config"
[[ $(stat -c '%U:%G %a' /etc/nonstop/nonstopd.toml) == "root:nonstop 640" ]] ||
  fail "after the reinstall the config is $(stat -c '%U:%G %a' /etc/nonstop/nonstopd.toml)"
echo "   remove keeps the edited config; the reinstall keeps it too (root:nonstop 640)"

echo "-- apt-get purge"
# What the service would have created (StateDirectory, CacheDirectory,
# LogsDirectory) and a drop-in: purge removes them too.
install -d -o nonstop -g nonstop /var/lib/nonstop /var/cache/nonstop /var/log/nonstop
install -d /etc/nonstop/conf.d
echo '# a drop-in' >/etc/nonstop/conf.d/local.toml
"${APT[@]}" purge nonstop >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; fail "apt-get purge failed"; }
installed=0
dpkg-query -W -f='${Status}' nonstop 2>/dev/null | grep -q 'installed\|config-files' &&
  fail "after purge dpkg still knows nonstop: $(dpkg-query -W -f='${Status}' nonstop)"
left=()
while read -r f; do
  [[ -e $f || -L $f ]] || continue
  # A folder others share (/usr/bin, /etc, ...) stays.
  [[ -d $f ]] && ! grep -qxF "$f" "$WORK/own-dirs" && continue
  left+=("$f")
done <"$WORK/files"
for f in /etc/nonstop /var/lib/nonstop /var/cache/nonstop /var/log/nonstop \
  /etc/systemd/system/nonstopd.service /var/lib/systemd/deb-systemd-helper-enabled/nonstopd.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-masked/nonstopd.service; do
  [[ -e $f || -L $f ]] && left+=("$f")
done
((${#left[@]} == 0)) || fail "purge left: ${left[*]}"
[[ -z $(dpkg-statoverride --list | grep nonstop || true) ]] || fail "purge left a stat override"
echo "   no file of the package, none of its $(grep -c . "$WORK/own-dirs") folders, no /etc/nonstop, nothing under /var"
if ! getent passwd nonstop >/dev/null || ! getent group nonstop-operators >/dev/null; then
  fail "purge removed the system users (they stay, docs/operations.md)"
fi
echo "   the user nonstop and the groups stay (Debian practice); this test removes the ones it created"

echo "   $(($(date +%s) - t_start)) s"
echo "PASS package"
