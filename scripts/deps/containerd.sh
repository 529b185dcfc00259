#!/usr/bin/env bash
# Install and cache the real programs the containerd system tests run.
#
# Why this exists: the system tests prove that a node *pulls* with regauth's
# output on every containerd we support.  Debian 12 ships containerd 1.6 only,
# so 1.7.x (Debian 13 "trixie") and 2.x (Debian unstable "sid") are fetched as
# .deb files with a PRIVATE apt sources list, state and cache (the host's apt
# configuration is never edited) and unpacked with `dpkg -x` into
#   $REGAUTH_CACHE/containerd/<upstream version>/usr/bin/containerd
# (default REGAUTH_CACHE=<repo>/.cache, git-ignored).  The .deb files are kept
# in $REGAUTH_CACHE/debs/containerd/<suite>/ so a second run needs no network.
# apt state lives in $REGAUTH_CACHE/apt/containerd-<suite>/ (our own, so other
# dependency scripts sharing the cache never contend for its lock).
#
# Run as root on a fresh Debian 12 machine.  Idempotent.
#   REGAUTH_REFRESH=1   fetch the newest 1.7.x / 2.x again even if cached.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${REGAUTH_CACHE:-$REPO/.cache}
export DEBIAN_FRONTEND=noninteractive

log() { printf 'deps/containerd: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get install, and the tests need root anyway)"

# --- 1. host packages ------------------------------------------------------
# containerd 1.6 (the binary under test), distribution 2.8 (the registry),
# skopeo (handy to inspect the test registry by hand), openssl, util-linux
# (unshare/nsenter/mount for the private namespaces the tests use).
HOST_PKGS=(containerd docker-registry skopeo openssl ca-certificates util-linux mount)

missing=()
for p in "${HOST_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  # A fresh machine without policy-rc.d would start docker-registry (listening
  # on :5000 on every interface) and the host containerd at install time.  The
  # tests start their own private instances, so forbid service starts during
  # our install and remove the guard afterwards.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# temporary: regauth scripts/deps/containerd.sh\nexit 101\n' >"$guard"
    chmod 0755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  log "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$guard" ]; then rm -f "$guard"; trap - EXIT; fi
fi

# Nothing of ours may be left listening: stop Debian's registry service if an
# earlier install (without the guard) started it.
if [ -d /run/systemd/system ]; then
  if systemctl is-active --quiet docker-registry 2>/dev/null; then
    log "stopping and disabling the docker-registry service (tests run their own)"
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
elif command -v service >/dev/null && service docker-registry status >/dev/null 2>&1; then
  log "stopping the docker-registry service (tests run their own)"
  service docker-registry stop >/dev/null 2>&1 || true
fi

# --- 2. containerd 1.7.x and 2.x from newer Debian suites ------------------
mirror() {
  # Same Debian mirror the host uses (deb822 or one-line format).
  local uri=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
      /etc/apt/sources.list)
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

upstream_version() { # 1.7.24~ds1-6 -> 1.7.24 ; 1:2.1.9~ds1-1 -> 2.1.9
  local v=${1#*:}
  printf '%s\n' "${v%%[~+-]*}"
}

# fetch SUITE GLOB: make sure $CACHE/containerd/<GLOB>/usr/bin/containerd exists.
fetch() {
  local suite=$1 glob=$2 have deb dir apt_dir version up tmp
  have=$(find "$CACHE/containerd" -mindepth 1 -maxdepth 1 -type d -name "$glob" 2>/dev/null | sort -V | tail -n1)
  if [ -n "$have" ] && [ -x "$have/usr/bin/containerd" ] && [ -z "${REGAUTH_REFRESH:-}" ]; then
    log "cached: $have ($(cat "$have/VERSION" 2>/dev/null | head -n1))"
    return 0
  fi

  dir=$CACHE/debs/containerd/$suite
  mkdir -p "$dir"
  deb=$(find "$dir" -maxdepth 1 -name 'containerd_*.deb' 2>/dev/null | sort -V | tail -n1)
  if [ -z "$deb" ] || [ -n "${REGAUTH_REFRESH:-}" ]; then
    apt_dir=$CACHE/apt/containerd-$suite
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
      "$(mirror)" "$suite" >"$apt_dir/sources.list"
    local opts=(
      -o "Dir::Etc::SourceList=$apt_dir/sources.list"
      -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State::Lists=$apt_dir/lists"
      -o "Dir::Cache=$apt_dir/cache"
      -o "Dir::Etc::Preferences=/dev/null"
      -o "Dir::Etc::PreferencesParts=/dev/null"
      -o "APT::Sandbox::User=root" # the cache dir is root's; _apt cannot write it
    )
    log "fetching containerd from Debian $suite ($(mirror))"
    apt-get "${opts[@]}" update -qq
    version=$(apt-cache "${opts[@]}" policy containerd | awk '/Candidate:/ {print $2}')
    [ -n "$version" ] && [ "$version" != "(none)" ] || die "no containerd in Debian $suite"
    (cd "$dir" && apt-get "${opts[@]}" download -qq "containerd=$version")
    deb=$(find "$dir" -maxdepth 1 -name 'containerd_*.deb' | sort -V | tail -n1)
  fi
  [ -n "$deb" ] || die "download of containerd from $suite left no .deb in $dir"

  version=$(dpkg-deb -f "$deb" Version)
  up=$(upstream_version "$version")
  # shellcheck disable=SC2053  # $glob is a pattern on purpose
  [[ $up == $glob ]] || die "Debian $suite has containerd $version, expected $glob"
  tmp=$(mktemp -d "$CACHE/containerd/.x.XXXXXX")
  dpkg -x "$deb" "$tmp"
  "$tmp/usr/bin/containerd" --version >/dev/null || die "$deb: containerd does not run here"
  printf '%s\nsuite=%s\ndeb=%s\nsha256=%s\n' "$version" "$suite" "$(basename "$deb")" \
    "$(sha256sum "$deb" | cut -d' ' -f1)" >"$tmp/VERSION"
  rm -rf "${CACHE:?}/containerd/$up"
  mv "$tmp" "$CACHE/containerd/$up"
  log "unpacked containerd $version -> $CACHE/containerd/$up"
}

mkdir -p "$CACHE/containerd"
rm -rf "$CACHE"/containerd/.x.* # half-unpacked leftovers of an interrupted run
fetch trixie '1.7.*'
fetch sid '2.*'

log "containerd binaries:"
for b in /usr/bin/containerd "$CACHE"/containerd/*/usr/bin/containerd; do
  [ -x "$b" ] && log "  $b: $("$b" --version)"
done
