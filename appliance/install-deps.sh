#!/usr/bin/env bash
# Install, from Debian's packages, what Tandem's build, lab and tests need.
# Idempotent: runs apt only when something is missing. Debian 12 (bookworm).
# Root, or a user with sudo. Does not download toolchains: cargo must already be
# there (rustup's toolchain in ~/.cargo/bin on the project machines).
set -euo pipefail

# build: DPDK 22.11 + bindgen + C shim
PKGS_BUILD=(libdpdk-dev dpdk pkg-config libclang-dev clang gcc make)
# lab: namespaces, veths, bridges, offload settings, capture (tcpdump, and DPDK's
# dpdk-dumpcap from dpdk-dev for appliance/e2e/capture.sh)
PKGS_LAB=(iproute2 ethtool nftables iputils-ping procps psmisc tcpdump dpdk-dev)
# servers and clients for the end-to-end tests; scapy and hping3 for the hostile-traffic
# test (appliance/e2e/hostile.sh), which sends only into the lab's own addresses
PKGS_E2E=(nginx-light curl socat python3 python3-scapy hping3 jq)
# perf
PKGS_PERF=(valgrind)
# the Debian package and its checks (appliance/package.sh, appliance/package-test.sh):
# dpkg-deb, dpkg-shlibdeps, objcopy, systemd-analyze, man, vagrant validate with the
# libvirt provider's checks (nothing is booted)
PKGS_PKG=(dpkg-dev binutils systemd man-db vagrant vagrant-libvirt)
PKGS=("${PKGS_BUILD[@]}" "${PKGS_LAB[@]}" "${PKGS_E2E[@]}" "${PKGS_PERF[@]}" "${PKGS_PKG[@]}")

step() { printf 'install-deps: %s\n' "$*"; }
die() {
    printf 'install-deps: error: %s\n' "$*" >&2
    exit 1
}

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    die "not root and sudo not found: run as root"
fi
as_root() { "${SUDO[@]}" "$@"; }

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script is for Debian 12"

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]
}

missing=()
for p in "${PKGS[@]}"; do
    is_installed "$p" || missing+=("$p")
done

# While nginx is being installed, keep its postinst from starting the system
# service (invoke-rc.d and deb-systemd-invoke both ask policy-rc.d). Only when
# no policy-rc.d exists already; removed again on exit.
POLICY=/usr/sbin/policy-rc.d
policy_added=0
cleanup() {
    if [[ $policy_added -eq 1 ]]; then
        as_root rm -f "$POLICY" || true
    fi
}
trap cleanup EXIT

if [[ ${#missing[@]} -eq 0 ]]; then
    step "packages: all ${#PKGS[@]} present, apt skipped"
else
    step "packages: missing ${missing[*]}"
    if [[ " ${missing[*]} " == *" nginx-light "* ]] && ! as_root test -e "$POLICY"; then
        # shellcheck disable=SC2016  # $1 is for the generated sh script
        printf '#!/bin/sh\n# added by tandem install-deps.sh while installing\n[ "$1" = nginx ] && exit 101\nexit 0\n' |
            as_root tee "$POLICY" >/dev/null
        as_root chmod 755 "$POLICY"
        policy_added=1
        step "policy-rc.d: nginx service start blocked during install"
    fi
    step "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    step "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
    still=()
    for p in "${missing[@]}"; do
        is_installed "$p" || still+=("$p")
    done
    [[ ${#still[@]} -eq 0 ]] || die "still missing after apt-get install: ${still[*]}"
    step "packages: installed ${#missing[@]}"
fi
cleanup
policy_added=0

# The lab runs its own nginx instances inside namespaces with their own configs;
# the packaged system service must not run (or start at boot) in the root
# namespace on :80.
if is_installed nginx-light || is_installed nginx-common; then
    if [[ -d /run/systemd/system ]]; then
        # systemd is PID 1: stop and disable in one go.
        as_root systemctl disable --now nginx >/dev/null 2>&1 || true
    else
        # No running systemd (container): disable the unit/SysV links offline,
        # and stop an instance the init script may have started.
        if command -v systemctl >/dev/null 2>&1; then
            as_root systemctl disable nginx >/dev/null 2>&1 || true
        elif command -v update-rc.d >/dev/null 2>&1; then
            as_root update-rc.d nginx disable >/dev/null 2>&1 || true
        fi
        if [[ -r /run/nginx.pid ]]; then
            pid=$(cat /run/nginx.pid 2>/dev/null || true)
            if [[ $pid =~ ^[0-9]+$ ]] && [[ $(ps -o comm= -p "$pid" 2>/dev/null || true) == nginx ]]; then
                # /run/nginx.pid belongs to the packaged service's config only.
                if [[ -x /etc/init.d/nginx ]]; then
                    as_root /etc/init.d/nginx stop >/dev/null 2>&1 || as_root kill "$pid" || true
                else
                    as_root kill "$pid" || true
                fi
            fi
        fi
    fi
    enabled=$(systemctl is-enabled nginx 2>/dev/null || true)
    if command -v ss >/dev/null 2>&1 && ss -Hltn 'sport = :80' 2>/dev/null | grep -q .; then
        step "nginx: WARNING something still listens on :80 in the root namespace (see: ss -ltnp 'sport = :80')"
    else
        step "nginx: system service stopped and ${enabled:-disabled} (lab runs its own)"
    fi
fi

# Rust toolchain: not installed here (no toolchain downloads); just found.
cargo_bin=$(command -v cargo 2>/dev/null || true)
if [[ -z $cargo_bin ]]; then
    home_cargo="${CARGO_HOME:-$HOME/.cargo}/bin/cargo"
    if [[ -x $home_cargo ]]; then
        die "cargo is at $home_cargo but not on PATH: run  . \"${CARGO_HOME:-$HOME/.cargo}/env\"  (or add $(dirname "$home_cargo") to PATH)"
    fi
    die "no Rust toolchain: cargo not on PATH. Use rustup's toolchain (the project machines have it in ~/.cargo/bin: '. ~/.cargo/env'); elsewhere install rustup from your distribution or rustup.rs, then 'rustup toolchain install stable'. This script does not download toolchains."
fi
step "rust: $("$cargo_bin" --version 2>/dev/null || echo "cargo at $cargo_bin") ($cargo_bin)"

# DPDK sanity: the build asks pkg-config for libdpdk >= 22.11.
if dpdk_ver=$(pkg-config --modversion libdpdk 2>/dev/null); then
    step "dpdk: libdpdk $dpdk_ver via pkg-config"
else
    die "pkg-config does not find libdpdk (libdpdk-dev installed?)"
fi
step "done"
