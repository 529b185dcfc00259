#!/bin/sh
# Install what the Packer system tests need, idempotently, as root on Debian 12.
#
# Why this shape:
# - Packer comes from Debian's own archive (bookworm has 1.6.6), so no download
#   outside the package registry is needed. It is *unpacked* into the git-ignored
#   cache instead of installed, so the host's package set and PATH stay as they
#   were and a second run costs nothing.
# - The host's apt sources are never edited; the default lists are used as they are.
# - openssh-server provides the sshd that the test harness runs inside a private
#   network namespace with its own config. Installing it must not leave an sshd
#   service listening on the host, so service starts are blocked during the install
#   (policy-rc.d, the Debian mechanism for that) and checked afterwards.
#
# Environment: REGAUTH_CACHE (default: <repo>/.cache).
# Prints the path of the packer binary on its last line.
set -eu
# Packer must never phone home (version checkpoint) from here or from the tests.
export CHECKPOINT_DISABLE=1

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${REGAUTH_CACHE:-$repo/.cache}
debs=$cache/debs

log() { printf 'packer.sh: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
    log "must run as root (apt-get)"; exit 1
fi

apt_ready() {
    # apt-cache finds nothing before the first 'apt-get update' on a fresh machine.
    apt-cache show "$1" >/dev/null 2>&1
}

ensure_lists() {
    if ! apt_ready packer; then
        log "apt lists have no 'packer': running apt-get update"
        apt-get update -qq
    fi
}

# --- openssh (sshd for the sandbox, ssh-keygen for its keys) + iproute2 ---------
install_sandbox_tools() {
    missing=""
    command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
    command -v ssh-keygen >/dev/null 2>&1 || missing="$missing openssh-client"
    # `ip link set lo up` inside the sandbox's network namespace.
    [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing="$missing iproute2"
    [ -z "$missing" ] && return 0
    ensure_lists
    added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        # Exit 101 = "action forbidden": invoke-rc.d will not start ssh.service.
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    log "installing$missing"
    # shellcheck disable=SC2086
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; then
        [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
        exit 1
    fi
    [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
    stop_host_sshd
}

stop_host_sshd() {
    # If an sshd service got started anyway (e.g. a machine booted with systemd and
    # no policy-rc.d), stop it: the tests must not leave a listener on the host.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        if systemctl is-active --quiet ssh.service 2>/dev/null; then
            log "stopping ssh.service started by the package install"
            systemctl stop ssh.service ssh.socket 2>/dev/null || true
        fi
    fi
    if [ -f /run/sshd.pid ]; then
        pid=$(cat /run/sshd.pid 2>/dev/null || true)
        if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = sshd ]; then
            log "stopping host sshd (pid $pid) started by the package install"
            kill "$pid" 2>/dev/null || true
        fi
    fi
}

# --- packer ---------------------------------------------------------------------
install_packer() {
    ensure_lists
    version=$(apt-cache policy packer | awk '/Candidate:/ {print $2}')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        log "no packer candidate in the apt lists"; exit 1
    fi
    upstream=${version#*:}
    upstream=${upstream%%+*}
    upstream=${upstream%%-*}
    dest=$cache/packer/$upstream
    if [ -x "$dest/usr/bin/packer" ] && "$dest/usr/bin/packer" version >/dev/null 2>&1; then
        log "packer $upstream already unpacked in $dest"
        echo "$dest/usr/bin/packer"
        return 0
    fi
    mkdir -p "$debs" "$cache/packer"
    # apt-get download names the file packer_<version, ':' as %3a>_<arch>.deb.
    deb=$debs/packer_$(printf %s "$version" | sed 's/:/%3a/')_$(dpkg --print-architecture).deb
    if [ ! -s "$deb" ]; then
        log "downloading packer $version into $debs"
        # As root apt-get may warn that the fetch is unsandboxed (_apt cannot write
        # the cache dir); harmless.
        (cd "$debs" && apt-get download -qq "packer=$version")
    fi
    [ -s "$deb" ] || { log "$deb missing after apt-get download"; exit 1; }
    tmp=$(mktemp -d "$cache/packer/.unpack.XXXXXX")
    dpkg -x "$deb" "$tmp"
    "$tmp/usr/bin/packer" version >/dev/null
    rm -rf "$dest"
    mv "$tmp" "$dest"
    log "packer $upstream unpacked in $dest"
    echo "$dest/usr/bin/packer"
}

install_sandbox_tools
install_packer
