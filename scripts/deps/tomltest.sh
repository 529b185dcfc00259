#!/usr/bin/env bash
# The toml-test corpus (valid/ + invalid/ TOML files) that Debian ships inside the Go source of
# BurntSushi/toml, for tests/unit/test_node_tomlparse.py. Idempotent; root only (apt-get).
set -euo pipefail
dpkg -s golang-github-burntsushi-toml-dev >/dev/null 2>&1 && exit 0
[ "$(id -u)" = 0 ] || { echo "tomltest.sh: not root, skipping" >&2; exit 0; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-github-burntsushi-toml-dev >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-github-burntsushi-toml-dev >/dev/null; }
