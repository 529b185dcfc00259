#!/usr/bin/env bash
# strace, for the system test that SIGKILLs regauth-apply at its Nth file syscall
# (tests/system/test_apply_kill_strace.py). Idempotent; root only (apt-get).
set -euo pipefail
command -v strace >/dev/null && exit 0
[ "$(id -u)" = 0 ] || { echo "strace.sh: not root, skipping" >&2; exit 0; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null; }
