#!/bin/bash
# Provisions the appliance VM (run by Vagrant as root inside it):
#
#   provision-appliance.sh OUT_MAC IN_MAC DEB
#       installs the package DEB (apt pulls its DPDK Depends and Recommends), reserves
#       1 GiB of 2 MiB hugepages, binds the NICs with those MACs to vfio-pci (no-IOMMU
#       mode: a VM has no IOMMU; persistent with driverctl), writes /etc/tandem/vm.yaml
#       and enables tandem@vm.service.
#   provision-appliance.sh --profile OUT_PCI IN_PCI FILE
#       only writes the profile for those PCI addresses (CI runs `tandem check` on it).
#
# `tandem host setup --profile /etc/tandem/vm.yaml` does the hugepages and the binding
# on an appliance host; this script does them by hand.
set -euo pipefail

write_profile() {
    local out_pci=$1 in_pci=$2 dest=$3
    cat >"$dest" <<YAML
# Tandem in the Vagrant VM topology (vagrant/README.md): virtio NICs on vfio-pci.
eal:
  args:
    - -l                  # lcores: 0 (main, control) and 1 (worker)
    - "0-1"
    - -n                  # memory channels
    - "1"
    - --socket-mem        # 512 MiB of the VM's 1 GiB of hugepages
    - "512"
    - --huge-dir
    - /dev/hugepages
    - --file-prefix       # runtime files under /var/run/dpdk/tandem-vm
    - tandem-vm
    - -a                  # the outside NIC (MAC 52:54:00:12:00:01)
    - "$out_pci"
    - -a                  # the inside NIC (MAC 52:54:00:13:00:01)
    - "$in_pci"
lcores:
  control: 0
  workers: [1]
ports:
  outside:
    device: "$out_pci"
    address: 198.18.0.1/24
    queues: 1
    rx_descriptors: 1024
    tx_descriptors: 1024
    mtu: 1500
  inside:
    device: "$in_pci"
    address: 198.19.0.1/24
    queues: 1
    rx_descriptors: 1024
    tx_descriptors: 1024
    mtu: 1500
services:
  - name: demo
    vip: 198.18.0.100     # the client connects here
    port: any
    mode: mirror
    copies: 2
    selection: ordered    # primary first, then backup
    replicas:
      - name: primary
        address: 198.19.0.11
      - name: backup
        address: 198.19.0.12
    health:
      probe_ports: [7000, 80]   # the stream server and nginx (vagrant/provision-host.sh)
      interval: 10ms
      timeout: 10ms
      fall: 3
      rise: 2
timeouts:
  syn: 5s
  established: 300s
  linger: 2s
  synack_wait: 2ms
  arp_refresh: 30s
limits:
  flows_per_worker: 65536
  hold_bytes_total: 33554432      # standby output held, all flows (32 MiB)
  hold_segments_total: 16384
  mbufs: 32767
  mbuf_cache: 256
management:
  socket: /run/tandem/vm.sock
  metrics: 127.0.0.1:9450
logging:
  format: human           # lines on stdout: the journal of tandem@vm.service
  level: info
YAML
}

if [ "${1:-}" = --profile ]; then
    [ $# -eq 4 ] || { echo "usage: $0 --profile OUT_PCI IN_PCI FILE" >&2; exit 2; }
    write_profile "$2" "$3" "$4"
    exit 0
fi
[ $# -eq 3 ] || { echo "usage: $0 OUT_MAC IN_MAC DEB" >&2; exit 2; }
out_mac=$1 in_mac=$2 deb=$3
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
    echo "provision: no tandem package: build it on the host (appliance/package.sh), then" \
        "'vagrant provision appliance'" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package (apt resolves its Depends and Recommends), the virtio NICs' DPDK driver,
# and driverctl for the persistent binding.
apt-get install -y -qq "$deb" librte-net-virtio23 driverctl >/dev/null
tandem --version

# Hugepages: 512 x 2 MiB, now and at every boot (systemd mounts /dev/hugepages).
echo 'vm.nr_hugepages = 512' >/etc/sysctl.d/80-tandem-hugepages.conf
sysctl -q -p /etc/sysctl.d/80-tandem-hugepages.conf
grep -q '^HugePages_Total: *512' /proc/meminfo || { grep Huge /proc/meminfo; exit 1; }

# vfio-pci without an IOMMU (a VM's virtio NICs): DPDK uses physical addresses.
echo 'options vfio enable_unsafe_noiommu_mode=1' >/etc/modprobe.d/tandem-vfio.conf
echo vfio-pci >/etc/modules-load.d/tandem-vfio.conf
modprobe vfio enable_unsafe_noiommu_mode=1
modprobe vfio-pci

profile=/etc/tandem/vm.yaml
if [ ! -f "$profile" ]; then
    # The NICs' PCI addresses, found by MAC while the kernel's driver still has them.
    pci_of() {
        local dev
        for dev in /sys/class/net/*; do
            if [ "$(cat "$dev/address")" = "$1" ]; then
                basename "$(readlink -f "$dev/device")"
                return 0
            fi
        done
        echo "provision: no NIC with MAC $1" >&2
        return 1
    }
    out_pci=$(pci_of "$out_mac")
    in_pci=$(pci_of "$in_mac")
    write_profile "$out_pci" "$in_pci" "$profile"
    chmod 640 "$profile"
    # driverctl keeps the override across reboots.
    driverctl set-override "$out_pci" vfio-pci
    driverctl set-override "$in_pci" vfio-pci
fi
tandem check --profile "$profile"
systemctl enable tandem@vm.service
systemctl restart tandem@vm.service
systemctl --no-pager status tandem@vm.service | head -5
