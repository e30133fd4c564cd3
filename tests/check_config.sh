#!/usr/bin/env bash
# `nonstopd check` as a person runs it: each config in tests/snapshots/check
# gives exactly the output (stdout + stderr) and exit code in its .out file.
# UPDATE=1 rewrites the snapshots.
source "$(dirname "$0")/common.bash"

cargo build -q --locked -p nonstop-supervisor
bin="$ROOT/target/debug/nonstopd"
cd "$ROOT/tests/snapshots/check"
n=0
for cfg in *.toml; do
  out="${cfg%.toml}.out"
  set +e
  # Software only: the expected output must not depend on this machine's
  # GPU (a box with NVENC would otherwise pick it and differ).
  got="$(NONSTOP_SOFTWARE_ONLY=1 "$bin" check "$cfg" 2>&1; echo "exit $?")"
  set -e
  if [[ "${UPDATE:-}" == 1 ]]; then
    printf '%s\n' "$got" >"$out"
  elif ! diff -u "$out" <(printf '%s\n' "$got"); then
    fail "nonstopd check $cfg differs from $out (UPDATE=1 to accept)"
  fi
  n=$((n + 1))
done
grep -rq "topsecret1\|streamkey123" -- *.out && fail "a secret leaked into nonstopd check output"
# The example configs we ship must stay valid.
for cfg in "$ROOT"/pipelines/*.toml "$ROOT"/packaging/*.toml.example; do
  "$bin" check "$cfg" >/dev/null || fail "shipped example $cfg is not valid"
done
echo "PASS check_config ($n configs)"
