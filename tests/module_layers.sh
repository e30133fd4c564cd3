#!/usr/bin/env bash
# nonstopd's modules depend one way (scripts/layers holds the layers), and
# the check catches a dependency that goes up.
source "$(dirname "$0")/common.bash"

"$ROOT/scripts/layers" || fail "a module depends against the layers (above)"
# A copy with one back-edge (the channel using the daemon) must be refused,
# naming it.
cp -r "$ROOT/supervisor/src" "$WORK/src"
echo 'fn _up() { let _ = crate::daemon::init_logging; }' >>"$WORK/src/channel/mod.rs"
set +e
out="$(LAYERS_SRC="$WORK/src" "$ROOT/scripts/layers" 2>&1)"
rc=$?
set -e
((rc == 1)) || fail "scripts/layers passed a tree where channel uses daemon (exit $rc)"
grep -q "supervisor/src/channel uses daemon, which is in a higher layer" <<<"$out" ||
  fail "scripts/layers did not name the back-edge: $out"
echo "PASS module_layers"
