#!/bin/bash
# Run the test stages (all by default, or those named), each even when an earlier one failed, then print
# one summary line and exit non-zero when any stage failed. Called by `make test` (PATH and the ansible
# environment come from the Makefile).
set -uo pipefail
exec </dev/null   # no test reads stdin; with fd 0 closed (as in CI) the ceph CLI dies on sys.stdin.isatty()
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
ALL=(lint docs units sanity integration openstack molecule)
STAGES=("$@"); [ ${#STAGES[@]} -gt 0 ] || STAGES=("${ALL[@]}")

stage_lint() {
  yamllint -s . && ansible-lint --profile production
}
stage_docs() {  # the README's role variable tables must match meta/argument_specs.yml
  python tools/docs/role_docs.py --check
}
stage_units() {
  python -m pytest -q tests/unit
}
stage_sanity() {
  tools/ci/sanity.sh sanity
}
stage_integration() {  # real qemu-img, real Ceph (started by the tests' fixture), then torn down
  local rc=0
  python -m pytest -q -m "not openstack" tests/integration || rc=$?
  tools/lab/ceph.sh down || rc=1
  return $rc
}
stage_openstack() {  # the real OpenStack all-in-one (Debian packages, TCG guests) beside the real Ceph: up,
  # boot, site.yml switches it to RBD, VMs boot as clones, down
  local rc=0
  python -m pytest -q -m openstack tests/integration || rc=$?
  tools/lab/ceph.sh down || rc=1
  return $rc
}
stage_molecule() {  # systemd containers (podman) + a real Ceph on the host
  tools/lab/podman-image.sh || return 1
  local d rc=0
  for d in extensions/molecule/*/molecule.yml; do
    d=${d%/molecule.yml}
    molecule test -s "${d#extensions/molecule/}" || rc=1
  done
  return $rc
}

# each stage's output is also kept in .build/logs/STAGE.log; a failed stage's failing lines are repeated at the
# end, so the last lines of a long run say what broke
LOGS=$ROOT/.build/logs
mkdir -p "$LOGS"
passed=(); failed=()
for s in "${STAGES[@]}"; do
  echo "=== stage $s"
  t0=$SECONDS
  if "stage_$s" 2>&1 | tee "$LOGS/$s.log"; then passed+=("$s"); r=ok; else failed+=("$s"); r=FAILED; fi
  echo "=== stage $s: $r in $((SECONDS - t0)) s"
done
for s in "${failed[@]}"; do
  echo "=== why stage $s failed (whole output: $LOGS/$s.log)"
  grep -aE '^(FAILED|ERROR) |^E  +[A-Za-z]|fatal: |failed=[1-9]|CRITICAL|Error:|[0-9]+ failed' "$LOGS/$s.log" | cut -c1-300 | tail -n 15
  tail -n 3 "$LOGS/$s.log" | cut -c1-300
done
echo "stages passed: ${passed[*]:-none}; failed: ${failed[*]:-none}"
echo "stages: ${#passed[@]} passed, ${#failed[@]} failed"
[ ${#failed[@]} -eq 0 ]
