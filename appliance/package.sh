#!/usr/bin/env bash
# Builds the Debian package tandem_<version>_<arch>.deb with Debian's own tools (dpkg-deb,
# dpkg-shlibdeps), from the release build and the files in appliance/package/.
#
#   appliance/package.sh              # builds target/release/tandem first (cargo --locked)
#   TANDEM_PKG_NO_BUILD=1 appliance/package.sh   # packages the binary already built
#
# Prints the .deb's path on its last line (under ${CARGO_TARGET_DIR:-target}/debian/).
# Contents:
#   /usr/bin/tandem                                   debug info stripped, symbols kept
#   /lib/systemd/system/tandem@.service               one instance per /etc/tandem/NAME.yaml
#   /etc/tandem/                                      the profiles' directory (empty)
#   /usr/share/doc/tandem/examples/*.yaml             configs/ (tandem check passes on them)
#   /usr/share/man/man1/tandem*.1.gz                  from the clap definition
#   /usr/share/bash-completion/completions/tandem, zsh, fish completions
# Depends: what dpkg-shlibdeps finds for the binary (libc, librte-eal23, librte-ethdev23,
# ...), plus the DPDK drivers the shared EAL loads at run time and the binary does not
# link: the ring mempool handler (every mbuf pool needs it) and the PCI and virtual-device
# buses. Recommends: dpdk (dpdk-devbind.py, dpdk-hugepages.py, and the NIC drivers).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ -d "$HOME/.cargo/bin" ]; then PATH="$HOME/.cargo/bin:$PATH"; fi

die() {
    echo "package: error: $*" >&2
    exit 1
}
for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture objcopy gzip python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (appliance/install-deps.sh installs dpkg-dev and binutils)"
done

target=${CARGO_TARGET_DIR:-$repo/target}
if [ "${TANDEM_PKG_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --locked -p tandem
fi
bin=$target/release/tandem
[ -x "$bin" ] || die "$bin not built (cargo build --release --locked -p tandem)"

# Name, version and description from the crate's own metadata: one source of truth.
read -r name version description < <(cargo metadata --no-deps --format-version 1 --locked |
    python3 -c 'import json, sys
p = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "tandem")
print(p["name"], p["version"], p["description"])')
if [ "$name" != tandem ] || [ -z "$version" ]; then
    die "cargo metadata gave no version of the tandem crate"
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
out=$target/debian
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/tandem" \
    "$root/usr/share/doc/$name/examples" "$root/usr/share/man/man1" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"

# The release profile keeps debug info for profiling; the package ships the symbols only.
objcopy --strip-debug "$bin" "$root/usr/bin/tandem"
chmod 755 "$root/usr/bin/tandem"
install -m 644 appliance/package/tandem@.service "$root/lib/systemd/system/"
chmod 750 "$root/etc/tandem"
install -m 644 configs/*.yaml "$root/usr/share/doc/$name/examples/"
install -m 644 README.md appliance/package/copyright "$root/usr/share/doc/$name/"

# Man pages and completions from the binary just packaged (its hidden generate-docs).
"$root/usr/bin/tandem" generate-docs --out "$work/docs"
for page in "$work"/docs/man/*.1; do
    gzip -9n <"$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
done
install -m 644 "$work/docs/completions/tandem.bash" "$root/usr/share/bash-completion/completions/tandem"
install -m 644 "$work/docs/completions/_tandem" "$root/usr/share/zsh/vendor-completions/_tandem"
install -m 644 "$work/docs/completions/tandem.fish" "$root/usr/share/fish/vendor_completions.d/tandem.fish"
chmod 644 "$root"/usr/share/man/man1/*.gz
for script in postinst prerm postrm; do
    install -m 755 "appliance/package/$script" "$root/DEBIAN/$script"
done

# dpkg-shlibdeps reads debian/control from its working directory.
mkdir -p "$work/src/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/tandem" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no dependencies for $root/usr/bin/tandem"
dpdk_abi=$(echo "$shlibs" | grep -o 'librte-eal[0-9]*' | head -1 | sed 's/librte-eal//')
[ -n "$dpdk_abi" ] || die "the binary does not link librte_eal: $shlibs"
depends="$shlibs, librte-mempool-ring$dpdk_abi, librte-bus-pci$dpdk_abi, librte-bus-vdev$dpdk_abi"

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: $name
Version: $version
Architecture: $arch
Maintainer: Tandem developers <tandem@example.invalid>
Installed-Size: $installed_size
Depends: $depends
Recommends: dpdk
Section: net
Priority: optional
Description: $description
 Tandem sits inline between clients and replicated servers, mirrors each TCP
 connection to a primary and a backup replica, and moves it to the backup when
 the primary dies, translating sequence numbers so that the client sees one
 unbroken stream. Run one instance per profile: tandem@NAME.service reads
 /etc/tandem/NAME.yaml (examples in /usr/share/doc/tandem/examples).
EOF
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$root/DEBIAN/md5sums"

mkdir -p "$out"
deb=$out/${name}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "package: $(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' ')"
echo "package: Depends: $(dpkg-deb -f "$deb" Depends)"
echo "$deb"
