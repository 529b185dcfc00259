#!/usr/bin/env bash
# Guard for the test suite (issue 13): only the clone's .venv (and its .venv-X.Y, issue 17) may import
# regauth.  A regauth installed by hand into another interpreter (a pyenv build, Debian's
# python3) lets a test that runs "whatever python3 is on PATH" pass here and fail on a
# fresh machine; this makes such a machine fail the same way, before the suite runs.
# Each interpreter is asked from / with no PYTHONPATH, so the repo itself is not on sys.path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(cd "${VENV:-.venv}" 2>/dev/null && pwd -P || echo "$PWD/${VENV:-.venv}")
clone=$(pwd -P)

candidates=()
while IFS= read -r p; do candidates+=("$p"); done < <(
  {
    type -ap python3 python 2>/dev/null || true
    if command -v pyenv >/dev/null 2>&1; then ls "$(pyenv root)"/versions/*/bin/python3 2>/dev/null || true; fi
    ls /usr/bin/python3 /usr/local/bin/python3 2>/dev/null || true
  } | sort -u
)

probe='
import glob, os, sys
hits = [p for d in sys.path if d and os.path.isdir(d)
        for p in glob.glob(os.path.join(d, "regauth-*.dist-info")) + glob.glob(os.path.join(d, "__editable__*regauth*"))]
try:
    import generator.render
    hits.append(os.path.dirname(generator.__file__))
except Exception:
    pass
print(" ".join(sorted(set(hits))))
'
bad=0 checked=0
for py in "${candidates[@]}"; do
  [ -x "$py" ] || continue
  # the clone's own venvs: .venv and the per-Python ones scripts/test.sh makes (.venv-3.10, ...)
  case "$(cd "$(dirname "$py")" && pwd -P)" in "$venv"/* | "$clone"/.venv-*/*) continue ;; esac
  checked=$((checked + 1))
  found=$(cd / && env -u PYTHONPATH -u PYTHONHOME PYENV_VERSION= "$py" -c "$probe" 2>/dev/null || true)
  if [ -n "$found" ]; then
    echo "check-interpreters: $py can import regauth ($found)" >&2
    bad=1
  fi
done
if [ "$bad" = 1 ]; then
  echo "check-interpreters: FAILED: regauth must be importable only from $venv; tests would lean on a hand-made install" >&2
  echo "  fix: for p in \$(pyenv root)/versions/*/bin/python3 /usr/bin/python3; do \$p -m pip uninstall -y regauth; done" >&2
  exit 1
fi
echo "check-interpreters: OK: none of $checked other interpreters can import regauth; only $venv can" >&2
