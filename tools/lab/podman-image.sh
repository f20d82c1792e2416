#!/bin/bash
# Build the molecule test image without a registry: a Debian bookworm rootfs by debootstrap with systemd
# as PID 1, plus the client packages an OpenStack host needs to talk to Ceph (ceph-common, python3-rbd,
# qemu-utils with the rbd block driver, libvirt for the secret). Skips the build when the image exists
# with the same recipe (label fastboot.recipe = sha256 of this file).
set -euo pipefail
IMAGE=${FASTBOOT_IMAGE:-localhost/fastboot-debian-systemd:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
WORK=${FASTBOOT_LAB_DIR:-/var/tmp/fastboot-lab}/image-build
RECIPE=$(sha256sum "$0" | cut -c1-16)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "$0")" && pwd)/containers.conf}
if [ "$(podman image inspect --format '{{ index .Labels "fastboot.recipe" }}' "$IMAGE" 2>/dev/null)" = "$RECIPE" ]; then
  echo "podman-image: $IMAGE is up to date ($RECIPE)"; exit 0
fi
T0=$SECONDS
rm -rf "$WORK"; mkdir -p "$WORK"
R=$WORK/rootfs
echo "podman-image: debootstrap bookworm into $R"
debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,procps,iproute2,ca-certificates \
  bookworm "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"; chmod +x "$R/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$R/etc/resolv.conf"
echo "podman-image: client packages (ceph-common, python3-rbd, qemu-utils, libvirt)"
chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  ceph-common python3-rbd python3-rados qemu-utils qemu-block-extra libvirt-daemon-system libvirt-clients \
  >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log"; exit 1; }
rm -f "$R/usr/sbin/policy-rc.d" "$R/etc/resolv.conf"
chroot "$R" apt-get clean
rm -rf "$R"/var/lib/apt/lists/*
touch -d 2000-01-01 "$R/var/lib/apt/lists"   # so apt's cache_valid_time does not skip the first update
: >"$R/etc/machine-id"
tar -C "$R" -c . | podman import --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL fastboot.recipe=$RECIPE" - "$IMAGE" >/dev/null
rm -rf "$WORK"
echo "podman-image: built $IMAGE in $((SECONDS - T0)) s"
