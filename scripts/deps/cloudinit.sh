#!/usr/bin/env bash
# Fetch real cloud-init for the regauth system tests, without installing it on the host.
#
# Why: cloud-init is not on PyPI, and the host must stay untouched (no cloud-init
# service, no changed apt sources). So we
#   1. download the cloud-init .deb of Debian 12 (22.4) and Debian 13 (25.1) through a
#      PRIVATE apt configuration (own sources list, lists dir and cache), unpack them
#      with `dpkg -x` and give each a venv with the Python modules `cloud-init schema`
#      imports;
#   2. debootstrap ONCE a lean bookworm rootfs holding cloud-init, python3, curl,
#      ca-certificates, openssh-server and systemd, in which tests apply user-data
#      for real (testbed/cloudinit_sandbox.py mounts it read-only under an overlay).
#
# Usage (root, Debian 12):  scripts/deps/cloudinit.sh [all|debs|rootfs]   (default: all)
# Environment: REGAUTH_CACHE (default <repo>/.cache, git-ignored),
#              REGAUTH_DEBIAN_MIRROR (default: the host's Debian mirror, else deb.debian.org).
# Idempotent: finished pieces are detected and skipped; every piece is built in a
# temporary directory and renamed into place, so an interrupted run leaves no half state.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${REGAUTH_CACHE:-$REPO/.cache}"
WHAT="${1:-all}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
ROOTFS_NAME=bookworm-cloudinit
# Packages inside the rootfs: what cloud-init needs to apply our user-data, what a
# boot-time fetch uses (python3, curl, CA bundle), sshd for `packer build` over SSH,
# and systemd for `systemd-analyze verify` of generated units.
ROOTFS_PACKAGES="cloud-init python3 curl ca-certificates openssh-server systemd iproute2"
# Bump when the recipe below changes: a cached rootfs with another recipe is rebuilt
# (testbed/rootfs.py reads this line too).
ROOTFS_RECIPE=3

log() { printf '[deps/cloudinit] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, debootstrap, chroot)"
case "$WHAT" in all|debs|rootfs) ;; *) die "usage: $0 [all|debs|rootfs]" ;; esac

mirror() {
    # Same mirror the host's apt already uses (deb822 file first, then sources.list).
    if [ -n "${REGAUTH_DEBIAN_MIRROR:-}" ]; then echo "$REGAUTH_DEBIAN_MIRROR"; return; fi
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m="$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m="$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)"
    fi
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR="$(mirror)"
MIRROR="${MIRROR%/}"
SECURITY_MIRROR="${MIRROR%/debian}/debian-security"

host_packages() {
    # Host tools only; cloud-init itself is never installed on the host.
    local need=()
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v unshare >/dev/null || need+=(util-linux)
    command -v dpkg-deb >/dev/null || need+=(dpkg)
    [ -x /usr/bin/python3 ] || need+=(python3)
    /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
    command -v ip >/dev/null || need+=(iproute2)
    command -v openssl >/dev/null || need+=(openssl)
    [ -r "$KEYRING" ] || need+=(debian-archive-keyring)
    if [ "${#need[@]}" -gt 0 ]; then
        log "apt-get install ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
}

# --- 1. cloud-init .debs through a private apt configuration -------------------------

private_apt() {
    # $1 = apt-get or apt-cache, $2 = private dir holding sources.list, lists/,
    # cache/; the rest are its arguments. The host's sources and state stay untouched.
    local tool="$1" d="$2"; shift 2
    "$tool" -q \
        -o Dir::Etc::SourceList="$d/sources.list" \
        -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::Etc::Preferences=/dev/null \
        -o Dir::Etc::PreferencesParts=/dev/null \
        -o Dir::State::Lists="$d/lists" \
        -o Dir::Cache="$d/cache" \
        -o APT::Get::List-Cleanup=false \
        -o APT::Sandbox::User=root \
        "$@"
}

fetch_cloudinit() {
    # $1 = short version dir name (22.4), $2 = Debian suite (bookworm)
    local short="$1" suite="$2" dest="$CACHE/cloud-init/$1"
    if [ -f "$dest/.complete" ]; then
        log "cloud-init $short already in $dest ($(cat "$dest/VERSION"))"
        return
    fi
    local apt="$CACHE/cloud-init/apt/$suite"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
    cat >"$apt/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR $suite main
deb [signed-by=$KEYRING] $MIRROR $suite-updates main
deb [signed-by=$KEYRING] $SECURITY_MIRROR $suite-security main
EOF
    log "private apt update for $suite"
    private_apt apt-get "$apt" update -qq >/dev/null
    local ver
    ver="$(private_apt apt-cache "$apt" policy cloud-init 2>/dev/null | awk '/Candidate:/ {print $2}')"
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no cloud-init in $suite"
    case "$ver" in "$short"*) ;; *) log "WARNING: $suite has cloud-init $ver (expected $short.x); using it" ;; esac
    log "downloading cloud-init $ver ($suite)"
    (cd "$apt/debs" && rm -f cloud-init_*.deb && private_apt apt-get "$apt" download -qq "cloud-init=$ver" >/dev/null)
    local deb
    deb="$(ls "$apt"/debs/cloud-init_*.deb)"
    local tmp="$dest.tmp.$$"
    rm -rf "$tmp"; mkdir -p "$tmp"
    dpkg -x "$deb" "$tmp/root"
    cp "$deb" "$tmp/"
    echo "$ver" >"$tmp/VERSION"
    make_venv "$short" "$tmp"
    # Smoke test: the unpacked cloud-init must answer `schema` on a trivial config.
    printf '#cloud-config\n{}\n' >"$tmp/smoke.yaml"
    # Run as root, 25.1 `schema` writes /run/cloud-init/instance-data*.json: give it a
    # private tmpfs /run so the host's /run never sees it (same as cloudinit_schema.py).
    unshare --mount --propagation private -- sh -c 'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"' sh \
        env PYTHONPATH="$tmp/root/usr/lib/python3/dist-packages" "$tmp/venv/bin/python" \
        "$tmp/root/usr/bin/cloud-init" schema --config-file "$tmp/smoke.yaml" >&2 \
        || die "unpacked cloud-init $ver does not run"
    rm -f "$tmp/smoke.yaml"
    touch "$tmp/.complete"
    rm -rf "$dest"; mv "$tmp" "$dest"
    log "cloud-init $ver ready in $dest"
}

make_venv() {
    # Pins follow what each Debian release ships, so schema checks see the same
    # jsonschema behaviour as a real VM (22.4 <-> bookworm, 25.1 <-> trixie).
    # PyYAML 6.0.1 instead of bookworm's 6.0: same API, and it has wheels for 3.11.
    local short="$1" dir="$2" pins
    case "$short" in
        22.4) pins="jinja2==3.1.2 jsonschema==4.10.3 configobj==5.0.8 jsonpatch==1.32 requests==2.28.1 pyserial==3.5 pyyaml==6.0.1 oauthlib==3.2.2" ;;
        25.1) pins="jinja2==3.1.6 jsonschema==4.19.2 configobj==5.0.9 jsonpatch==1.32 requests==2.32.3 pyserial==3.5 pyyaml==6.0.2 oauthlib==3.2.2" ;;
        *) pins="jinja2 jsonschema configobj jsonpatch requests pyserial pyyaml oauthlib" ;;
    esac
    log "venv for cloud-init $short: $pins"
    /usr/bin/python3 -m venv "$dir/venv"
    # shellcheck disable=SC2086
    "$dir/venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: $pins >&2
}

# --- 2. the bookworm rootfs ----------------------------------------------------------

build_rootfs() {
    local dest="$CACHE/rootfs/$ROOTFS_NAME"
    local stamp="$CACHE/rootfs/$ROOTFS_NAME.json"
    if [ -d "$dest" ] && [ -f "$stamp" ] && grep -q "\"recipe\": $ROOTFS_RECIPE," "$stamp"; then
        log "rootfs already in $dest"
        return
    fi
    rm -f "$stamp"
    mkdir -p "$CACHE/rootfs"
    local tmp="$CACHE/rootfs/.$ROOTFS_NAME.tmp.$$"
    rm -rf "$tmp"
    local t0; t0=$(date +%s)
    log "debootstrap bookworm minbase into $tmp (mirror $MIRROR)"
    # Private mount/pid/uts/ipc namespaces: debootstrap's /proc and /sys mounts, any
    # daemon a postinst might start and any hostname change die with the namespace.
    # The network is shared: debootstrap and apt need the mirror.
    unshare --mount --propagation private --pid --fork --kill-child --uts --ipc \
        bash -euo pipefail -c '
            tmp="$1"; mirror="$2"; secmirror="$3"; pkgs="$4"
            debootstrap --variant=minbase bookworm "$tmp" "$mirror" >/dev/null
            # Never start services while installing, whatever a postinst tries.
            printf "#!/bin/sh\nexit 101\n" >"$tmp/usr/sbin/policy-rc.d"
            chmod 0755 "$tmp/usr/sbin/policy-rc.d"
            cat >"$tmp/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $secmirror bookworm-security main
EOF
            mount -t proc proc "$tmp/proc"
            chroot "$tmp" apt-get update -qq
            DEBIAN_FRONTEND=noninteractive chroot "$tmp" \
                apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
            # The locale module of cloud-init sets en_US.UTF-8 on Debian: as on a cloud image,
            # have it generated, or update-locale fails.
            sed -i "s/^# *\(en_US.UTF-8 UTF-8\)/\1/" "$tmp/etc/locale.gen"
            chroot "$tmp" locale-gen >/dev/null
            chroot "$tmp" apt-get clean
            umount "$tmp/proc"
        ' _ "$tmp" "$MIRROR" "$SECURITY_MIRROR" "$ROOTFS_PACKAGES"
    # Lean: drop package lists and docs the tests never read.
    rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/usr/share/doc/* "$tmp"/usr/share/man/* \
           "$tmp"/usr/share/locale/* "$tmp"/var/cache/apt/*.bin
    # Whatever the build left in /run or /tmp is not part of the image.
    rm -rf "$tmp"/run/* "$tmp"/tmp/*
    # debootstrap copied the build host's resolver and name; an image has neither.
    # With no nameserver line the resolver asks 127.0.0.1, i.e. the sandbox's own
    # loopback: a DNS query from a test can never be addressed off the machine.
    printf '# regauth test image: no resolver (sandboxes only have loopback)\n' >"$tmp/etc/resolv.conf"
    echo regauth-image >"$tmp/etc/hostname"
    chmod 0644 "$tmp/etc/resolv.conf" "$tmp/etc/hostname"
    local civer; civer="$(chroot "$tmp" dpkg-query -W -f='${Version}' cloud-init)"
    local t1; t1=$(date +%s)
    rm -rf "$dest"; mv "$tmp" "$dest"
    cat >"$CACHE/rootfs/$ROOTFS_NAME.json" <<EOF
{"recipe": $ROOTFS_RECIPE, "suite": "bookworm", "cloud_init": "$civer", "mirror": "$MIRROR", "built": "$(date -u +%FT%TZ)", "seconds": $((t1 - t0)), "packages": "$ROOTFS_PACKAGES"}
EOF
    log "rootfs ready in $dest: cloud-init $civer, $(du -sh "$dest" | cut -f1), $((t1 - t0)) s"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.cloudinit-deps.lock"
flock 9    # one builder at a time (parallel test workers, CI + a developer)
host_packages
if [ "$WHAT" = all ] || [ "$WHAT" = debs ]; then
    fetch_cloudinit 22.4 bookworm
    fetch_cloudinit 25.1 trixie
fi
if [ "$WHAT" = all ] || [ "$WHAT" = rootfs ]; then
    build_rootfs
fi
