#!/usr/bin/env bash
# The fleet's chaos harness in quick mode (docs/reliability.md, "The
# fleet"): two boxes running nonstopd on a 3-member etcd cluster, in network
# namespaces; one fault of each of the nine kinds (leader kill -9, SIGSTOP
# and cut-off at a drawn phase of its lease renewal, drain, etcd member
# kill, leader cut from etcd, all etcd down, rolling restart, standby kill)
# in an order and with parameters drawn from a fresh seed (printed;
# CHAOS_FLEET_SEED=N replays one), each judged at the receiver with
# tests/fleet.sh's rules. About 2 minutes; under 4 on a loaded 2-core box.
source "$(dirname "$0")/common.bash"

if (($(id -u) != 0)); then skipped "chaos_fleet: needs root (network namespaces)"; exit 0; fi
command -v etcd >/dev/null || { skipped "chaos_fleet: no etcd (apt-get install etcd-server etcd-client)"; exit 0; }

seed=()
[[ -n ${CHAOS_FLEET_SEED:-} ]] && seed=(--seed "$CHAOS_FLEET_SEED")
out="$WORK/chaos-fleet"
started=$SECONDS
if ! "$ROOT/scripts/chaos" --fleet --quick "${seed[@]}" --out "$out"; then
  # What failed, and each failed fault's box logs (the lines since it began).
  sed -n '/^## Failures/,/^## Every fault/p' "$out/report.md" | sed '$d' >&2 || true
  for d in "$out"/faults/*/; do
    [[ -s $d/fails.txt ]] || [[ -e $d/box-a.log ]] || continue
    for x in a b; do
      [[ -s $d/box-$x.log ]] || continue
      echo "--- $(basename "$d"): box-$x's log since the fault began (last 20 lines)" >&2
      tail -n 20 "$d/box-$x.log" >&2
    done
  done
  fail "the fleet chaos run failed (replay with the command it printed; KEEP_WORK=1 keeps $out)"
fi
echo "   $((SECONDS - started)) s"
echo "PASS chaos_fleet"
