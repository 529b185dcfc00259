#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this through `make test`).
# As root it first installs everything the system tests need (scripts/deps/*.sh:
# apt packages, containerd 1.6/1.7/2.x, cloud-init 22.4/25.1, Packer, a Debian
# rootfs), all cached under .cache/. Then fast and system tests run together, and the
# fast tests once more on Python 3.10 and 3.13 (REGAUTH_EXTRA_PYTHONS="" skips that).
set -euo pipefail
cd "$(dirname "$0")/.."
export REGAUTH_CACHE=${REGAUTH_CACHE:-$PWD/.cache}
# No test may reach Google's metadata server.
export NO_GCE_CHECK=true GCE_METADATA_HOST=127.0.0.1:9 GCE_METADATA_IP=127.0.0.1:9

if [ "$(id -u)" = 0 ]; then
  for dep in scripts/deps/*.sh; do
    echo "== $dep" >&2
    bash "$dep"
  done
else
  echo "not root: system dependencies not installed; system tests will be skipped" >&2
fi
bash scripts/setup.sh
# Only the clone's .venv may import regauth (a hand-made install elsewhere hides test mistakes).
bash scripts/check-interpreters.sh

# Tests touch nothing outside themselves: remember the time, and afterwards list what
# changed in the host places a runtime config test could reach by mistake.
host_stamp=$(mktemp)
guarded="/etc /var/snap /var/lib/containerd /run/containerd /var/lib/rancher /etc/rancher /var/lib/kubelet /opt/cni /run/nri /root/.docker"

status=0
.venv/bin/python -m pytest -m "system or not system" -p no:cacheprovider -q -rs "$@" || status=$?

# The generator declares Python 3.10-3.13 (pyproject.toml): the fast tests run again on the
# oldest and newest, each in a venv of its own beside .venv (.venv-3.10, .venv-3.13; made
# and kept by scripts/setup.sh, like .venv).  System tests run once, above.
PYENV_ROOT_DIR=${PYENV_ROOT:-/root/.pyenv}
for version in ${REGAUTH_EXTRA_PYTHONS-3.10.13 3.13.0}; do
  minor=${version%.*}
  py="$PYENV_ROOT_DIR/versions/$version/bin/python3"
  if [ ! -x "$py" ]; then
    echo "== Python $version: $py not found" >&2
    if [ "${CI:-}" = true ]; then status=1; fi
    continue
  fi
  started=$(date +%s)
  VENV=".venv-$minor" PYTHON="$py" bash scripts/setup.sh
  ready=$(date +%s)
  "./.venv-$minor/bin/python" -m pytest -m "not system" -p no:cacheprovider -q "$@" || status=$?
  echo "== Python $minor: venv ready in $((ready - started)) s, unit tests in $(($(date +%s) - ready)) s" >&2
done

# shellcheck disable=SC2086
touched=$(find $guarded -xdev -newer "$host_stamp" 2>/dev/null | grep -v '^/etc/ld.so.cache$' || true)
rm -f "$host_stamp"
if [ -n "$touched" ]; then
  echo "the tests changed the host (they must only touch their own temp dirs):" >&2
  echo "$touched" >&2
  status=1
fi

# Tests must stop everything they start: fail if anything of ours is still running.
leftover=$(pgrep -a -f "$REGAUTH_CACHE|containerd --config|docker-registry|packer build" | grep -v pgrep || true)
if [ -n "$leftover" ]; then
  echo "processes left running by the tests:" >&2
  echo "$leftover" >&2
  status=1
fi
exit $status
