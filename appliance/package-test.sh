#!/usr/bin/env bash
# The Debian package, its systemd unit and vagrant/, tested (appliance/test.sh runs this
# after the cargo tests):
#
#   1. appliance/package.sh builds tandem_<version>_<arch>.deb; its contents and Depends
#      are checked;
#   2. as root: `dpkg -i` installs it; the installed /usr/bin/tandem answers --version
#      and `tandem check` passes on the example profiles and on the Vagrant VM's profile;
#      the man pages and the bash completion are found; `systemd-analyze verify` passes on
#      an instance of the installed unit (tandem@lab.service); `dpkg -P` purges it again
#      (also on failure), and nothing of it is left. Skipped without root, or when a
#      tandem package is installed already (this test does not replace it);
#   3. `vagrant validate` in vagrant/ (Debian's vagrant and vagrant-libvirt; nothing is
#      booted or downloaded).
#
#   appliance/package-test.sh        # TANDEM_PKG_NO_BUILD=1: package the binary built
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
pass=0
fail=0
ok() { pass=$((pass + 1)); printf 'package: ok: %s\n' "$*"; }
bad() { fail=$((fail + 1)); printf 'package: FAILED: %s\n' "$*"; }

tmp=$(mktemp -d /tmp/tandem-package.XXXXXX)
installed_here=0
cleanup() {
    local rc=$?
    set +e
    if [ "$installed_here" = 1 ]; then dpkg -P tandem >/dev/null 2>&1; fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# 1. Build and inspect.
appliance/package.sh >"$tmp/package.out"
deb=$(tail -1 "$tmp/package.out")
version=$(dpkg-deb -f "$deb" Version)
ok "built $(basename "$deb")"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/contents"
for path in /usr/bin/tandem /lib/systemd/system/tandem@.service \
    /usr/share/doc/tandem/examples/lab.yaml /usr/share/doc/tandem/examples/appliance-2port.yaml \
    /usr/share/man/man1/tandem.1.gz /usr/share/man/man1/tandem-run.1.gz \
    /usr/share/man/man1/tandem-check.1.gz /usr/share/bash-completion/completions/tandem \
    /usr/share/zsh/vendor-completions/_tandem /usr/share/fish/vendor_completions.d/tandem.fish \
    /usr/share/doc/tandem/copyright /etc/tandem/; do
    grep -qxF "$path" "$tmp/contents" || bad "the package lacks $path"
done
ok "the package holds the binary, the unit, examples, man pages, completions"
depends=$(dpkg-deb -f "$deb" Depends)
for dep in librte-eal23 librte-ethdev23 librte-mempool-ring23 libc6; do
    [[ $depends == *"$dep"* ]] || bad "Depends lacks $dep: $depends"
done
ok "Depends: $depends"

# 2. Install, use, verify, purge.
if [ "$(id -u)" != 0 ]; then
    echo "package: install: skipped: needs root (dpkg -i)"
elif dpkg-query -W -f='${db:Status-Abbrev}' tandem 2>/dev/null | grep -q '^ii'; then
    echo "package: install: skipped: a tandem package is installed on this machine already"
else
    installed_here=1
    if dpkg -i "$deb" >"$tmp/dpkg.out" 2>&1; then
        ok "dpkg -i $(basename "$deb")"
    else
        bad "dpkg -i failed:"
        cat "$tmp/dpkg.out"
        exit 1
    fi
    cd /
    if /usr/bin/tandem --version | grep -q "^tandem $version "; then
        ok "installed: $(/usr/bin/tandem --version)"
    else
        bad "/usr/bin/tandem --version: $(/usr/bin/tandem --version 2>&1)"
    fi
    for p in /usr/share/doc/tandem/examples/*.yaml; do
        if tandem check --profile "$p" >"$tmp/check.out" 2>&1; then
            ok "tandem check --profile $p"
        else
            bad "tandem check --profile $p: $(cat "$tmp/check.out")"
        fi
    done
    "$repo/vagrant/provision-appliance.sh" --profile 0000:00:06.0 0000:00:07.0 "$tmp/vm.yaml"
    if tandem check --profile "$tmp/vm.yaml" >"$tmp/check.out" 2>&1; then
        ok "tandem check passes on the Vagrant appliance's profile"
    else
        bad "the Vagrant appliance's profile: $(cat "$tmp/check.out")"
    fi
    if man -w tandem-run >/dev/null 2>&1 && man -w tandem >/dev/null 2>&1; then
        ok "man finds tandem(1) and tandem-run(1)"
    else
        bad "man does not find the pages (man-db installed?)"
    fi
    # The completion offers the subcommands, and not the hidden generate-docs.
    words=$(bash -c '. /usr/share/bash-completion/completions/tandem
        COMP_WORDS=(tandem ""); COMP_CWORD=1; COMP_LINE="tandem "; COMP_POINT=7
        _tandem tandem "" tandem; printf "%s\n" "${COMPREPLY[@]}"' 2>&1 || true)
    if grep -qx check <<<"$words" && grep -qx run <<<"$words" && ! grep -q generate <<<"$words"; then
        ok "bash completes tandem's subcommands"
    else
        bad "bash completion of 'tandem ': $(tr '\n' ' ' <<<"$words")"
    fi
    # An instance of the template, as `systemctl enable tandem@lab` would make it;
    # verify works on files without systemd running. It exits 0 on an unknown key or a
    # bad value (it only warns): any line it prints fails the check.
    if systemd-analyze verify /lib/systemd/system/tandem@lab.service >"$tmp/verify.out" 2>&1 &&
        [ ! -s "$tmp/verify.out" ]; then
        ok "systemd-analyze verify tandem@lab.service"
    else
        bad "systemd-analyze verify tandem@lab.service:"
        cat "$tmp/verify.out"
    fi
    cd "$repo"
    dpkg -P tandem >"$tmp/dpkg.out" 2>&1 || { bad "dpkg -P tandem: $(cat "$tmp/dpkg.out")"; }
    installed_here=0
    left=()
    for path in /usr/bin/tandem /lib/systemd/system/tandem@.service /usr/share/doc/tandem /etc/tandem; do
        [ -e "$path" ] && left+=("$path")
    done
    if [ ${#left[@]} -eq 0 ]; then ok "dpkg -P tandem left nothing behind"; else bad "left after purge: ${left[*]}"; fi
fi

# 3. The Vagrantfile: validated by Vagrant with the libvirt provider's checks, in a
# private Vagrant home (nothing left in ~/.vagrant.d or vagrant/.vagrant).
if ! command -v vagrant >/dev/null 2>&1; then
    bad "vagrant is missing (appliance/install-deps.sh installs vagrant and vagrant-libvirt)"
elif (cd vagrant && VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_HOME="$tmp/vagrant.d" \
    VAGRANT_DOTFILE_PATH="$tmp/vagrant-dot" VAGRANT_DEFAULT_PROVIDER=libvirt TANDEM_DEB="$deb" \
    vagrant validate) >"$tmp/vagrant.out" 2>&1; then
    ok "vagrant validate (provider libvirt)"
else
    bad "vagrant validate:"
    cat "$tmp/vagrant.out"
fi

echo "package: $pass passed, $fail failed"
[ "$fail" = 0 ]
