# shellcheck shell=bash
# Finds cargo for the scripts that build (sourced; defines `tandem_find_cargo`, runs
# nothing). As root on a fresh Debian 12 (no sudo at all), root's own toolchain: on PATH
# or in ~/.cargo/bin. Under `sudo` from a user, whose rustup toolchain root's PATH and
# HOME do not see (sudo resets both), the user's cargo, run as that user: target/ and
# ~/.cargo stay theirs, only what needs root (apt, namespaces, dpkg) runs as root.
# `cargo` is then a function, exported, so the scripts these scripts run use it too.

# Usage: tandem_find_cargo   (status 1 if there is none; install-deps.sh says what to do)
tandem_find_cargo() {
    if [ -d "$HOME/.cargo/bin" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi
    command -v cargo >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        local home
        home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
            TANDEM_USER_HOME=$home
            export TANDEM_USER_HOME SUDO_USER
            # runuser (util-linux) rather than sudo: root needs no password, nor sudo.
            cargo() {
                runuser -u "$SUDO_USER" -- env HOME="$TANDEM_USER_HOME" USER="$SUDO_USER" \
                    PATH="$TANDEM_USER_HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin" cargo "$@"
            }
            export -f cargo
            echo "cargo: $SUDO_USER's toolchain ($home/.cargo/bin), run as $SUDO_USER"
            return 0
        fi
    fi
    return 1
}
