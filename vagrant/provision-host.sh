#!/bin/bash
# Provisions a host of the VM topology (run by Vagrant as root inside the VM):
#   provision-host.sh client            curl, python3, /opt/tandem/stream.py
#   provision-host.sh replica ADDRESS   the deterministic stream server on ADDRESS:7000
#                                       and nginx on :80 serving the same 48 MiB file as
#                                       the other replica; replies to the clients' subnet
#                                       go back through the appliance
set -euo pipefail
role=$1
export DEBIAN_FRONTEND=noninteractive
install -D -m 755 /tmp/stream.py /opt/tandem/stream.py
case $role in
client)
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends curl python3 >/dev/null
    ;;
replica)
    address=$2
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nginx-light python3 >/dev/null
    # The clients' subnet through the appliance; Vagrant's management network keeps the
    # default route.
    cat >/etc/network/if-up.d/tandem-route <<'ROUTE'
#!/bin/sh
ip route replace 198.18.0.0/24 via 198.19.0.1 2>/dev/null || true
ROUTE
    chmod 755 /etc/network/if-up.d/tandem-route
    ip route replace 198.18.0.0/24 via 198.19.0.1
    # The same bytes on every replica (mirror mode compares them): a seeded generator.
    python3 -c 'import random, sys
r = random.Random(20261123)
sys.stdout.buffer.write(r.randbytes(48 << 20))' >/var/www/html/48M.bin
    cat >/etc/systemd/system/tandem-stream.service <<UNIT
[Unit]
Description=Tandem's deterministic stream server (demonstration) on $address:7000
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/python3 /opt/tandem/stream.py serve $address /run/tandem-stream.pid
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable --now nginx tandem-stream.service
    ;;
*)
    echo "provision-host.sh: unknown role $role" >&2
    exit 1
    ;;
esac
