#!/bin/bash
# ansible-test sanity (and units) need the collection as a git checkout under ansible_collections/NS/NAME.
# Copy what git tracks (plus new, not ignored files) there, make it a repository, run ansible-test.
#   tools/ci/sanity.sh sanity|units [ansible-test options, e.g. --test pylint]
# Each run works in its own copy (several developers may run it at once) and removes it afterwards.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${VENV:-$ROOT/.venv}
mkdir -p "$ROOT/.build"
TOP=$(mktemp -d "$ROOT/.build/ansible-test.XXXXXX")
trap 'rm -rf "$TOP"' EXIT
DEST=$TOP/ansible_collections/fastboot/cloud
mkdir -p "$DEST"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$DEST")
(cd "$DEST" && git init -q && git add -A)
# ansible-test bootstraps pip in its venvs with a script it downloads from a host we cannot reach
PIPV=$("$VENV/bin/python" -c "import re, inspect, ansible_test._internal.python_requirements as m; \
print(re.search(r\"pip='([0-9.]+)'\", inspect.getsource(m.get_venv_packages)).group(1))")
mkdir -p "$HOME/.ansible/test/cache"
cp "$ROOT/tools/ci/get_pip_shim.py" "$HOME/.ansible/test/cache/get_pip_${PIPV//./_}.py"
PY=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cd "$DEST"
what=${1:-sanity}; shift || true
case "$what" in
  sanity) "$VENV/bin/ansible-test" sanity --venv --python "$PY" --color no "$@" ;;
  units) "$VENV/bin/ansible-test" units --venv --python "$PY" --color no "$@" ;;
  *) echo "usage: $0 sanity|units" >&2; exit 2 ;;
esac
