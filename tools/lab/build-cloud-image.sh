#!/bin/bash
# Build the lab's test cloud image: Debian 12 (bookworm) with cloud-init, by debootstrap, without mounting
# anything from the image (the disk is made with `mke2fs -d`).
#
# Output in $FASTBOOT_LAB_DIR/images (default /var/tmp/fastboot-lab/images):
#   debian-12-cloudinit.raw     2 GiB raw disk, MBR, one ext4 partition (vda1) at 1 MiB, no boot loader
#   debian-12-cloudinit.qcow2   the same disk as qcow2
#   debian-12-cloudinit.vmlinuz / .initrd   the guest kernel and initramfs, for `qemu -kernel/-initrd`
#   debian-12-cloudinit.recipe  the recipe hash the files were built from
# Boot: qemu-system-x86_64 -kernel X.vmlinuz -initrd X.initrd -append "root=/dev/vda1 console=ttyS0" ...
#
# The image is a stock Debian cloud image (cloud-init's stock configuration, no ssh host keys, empty
# machine-id and resolv.conf) plus one lab diagnostic that does nothing unless asked for on the kernel
# command line: with `fastboot.report=1` the unit fastboot-report.service waits for cloud-init to be done
# (or disabled), prints `cloud-init status --long`, `cloud-init analyze blame`, /run/cloud-init/result.json
# and ds-identify's verdict to the serial console between FASTBOOT-REPORT-BEGIN/END lines, and with
# `fastboot.report=poweroff` it then powers the guest off (so a test boot ends by itself).
#
# The build is skipped when the outputs exist and were built from the same recipe (this script's text,
# the suite and the mirror). FASTBOOT_IMAGE_REBUILD=1 forces a rebuild. Needs root (debootstrap, chroot).
set -euo pipefail

LAB_DIR=${FASTBOOT_LAB_DIR:-/var/tmp/fastboot-lab}
OUT=${FASTBOOT_IMAGE_DIR:-$LAB_DIR/images}
SUITE=${FASTBOOT_DEBIAN_SUITE:-bookworm}
MIRROR=${FASTBOOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
NAME=debian-12-cloudinit
SIZE_MIB=2048
PART_START_MIB=1

INCLUDE=systemd-sysv,udev,kmod,ifupdown,isc-dhcp-client,iproute2,netbase,e2fsprogs
# locales: cloud-init's locale module runs update-locale LANG=en_US.UTF-8 (as in Debian's own cloud images)
PACKAGES=(linux-image-cloud-amd64 cloud-init openssh-server cloud-guest-utils sudo locales)

die() { echo "build-cloud-image: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot)"
for tool in debootstrap sfdisk mke2fs qemu-img chroot unshare flock sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found: install the packages in tools/deps/apt-packages.txt"
done

mkdir -p "$OUT"
recipe=$( { cat "$0"; echo "$SUITE $MIRROR $SIZE_MIB"; } | sha256sum | cut -c1-16)

up_to_date() {
    local f
    for f in raw qcow2 vmlinuz initrd; do
        [ -s "$OUT/$NAME.$f" ] || return 1
    done
    [ "$(cat "$OUT/$NAME.recipe" 2>/dev/null)" = "$recipe" ]
}

exec 9>"$OUT/.$NAME.lock"
flock 9
if [ "${FASTBOOT_IMAGE_REBUILD:-0}" != 1 ] && up_to_date; then
    echo "build-cloud-image: $OUT/$NAME.{raw,qcow2,vmlinuz,initrd} up to date (recipe $recipe)"
    exit 0
fi

work="$OUT/.build-$NAME"
rm -rf "$work"
mkdir -p "$work" "$OUT/cache/debootstrap"
root="$work/rootfs"
trap 'rm -rf "$work"' EXIT

echo "build-cloud-image: debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include="$INCLUDE" --cache-dir="$OUT/cache/debootstrap" \
    "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

# no service starts inside the chroot
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
echo 'en_US.UTF-8 UTF-8' >"$root/etc/locale.gen"
cat >"$root/etc/fstab" <<'EOF'
/dev/vda1 / ext4 rw,discard,errors=remount-ro 0 1
EOF

echo "build-cloud-image: apt-get install ${PACKAGES[*]}"
# /proc and /sys for the package scripts, in a private mount namespace: they vanish with it
# shellcheck disable=SC2016 # expanded by the inner shell
unshare --mount --propagation private /bin/sh -ec '
root=$1; shift
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update -q
chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
chroot "$root" locale-gen
chroot "$root" apt-get clean
' sh "$root" "${PACKAGES[@]}" >"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log" >&2; die "apt-get install in the chroot failed"; }

# the lab diagnostic (inactive unless the kernel command line asks for it, see the header)
cat >"$root/usr/local/sbin/fastboot-report" <<'EOF'
#!/bin/sh
# Print cloud-init's own evidence to the console once it is done (or disabled); see fastboot-report.service.
# The report is collected first and written to a freshly opened /dev/ttyS0 once the serial getty runs:
# agetty's vhangup() cuts off every file descriptor that was open on the tty before it started.
out=/run/fastboot-report.txt
cloud-init status --wait >/dev/null 2>&1
{
echo "FASTBOOT-REPORT-BEGIN uptime=$(cut -d' ' -f1 /proc/uptime)"
cloud-init status --long 2>&1 | sed 's/^/FASTBOOT-STATUS: /'
cloud-init analyze blame 2>&1 | sed 's/^/FASTBOOT-BLAME: /'
sed 's/^/FASTBOOT-RESULT: /' /run/cloud-init/result.json 2>/dev/null
grep -E '^(policy loaded|found|DSNAME|DSLIST|DMI_SYS_VENDOR|DMI_PRODUCT_NAME|FS_LABELS|ISO9660_DEVS)|ec2 platform|datasource_list|^[A-Za-z]+: (Found|Not)|^DSLIST|^RET|^MODE' \
    /run/cloud-init/ds-identify.log 2>/dev/null | sed 's/^/FASTBOOT-DSID: /'
sed 's/^/FASTBOOT-GENERATOR: /' /run/cloud-init/cloud-init-generator.log 2>/dev/null
grep -h 'BOOTLAB' /var/log/cloud-init-output.log 2>/dev/null | sed 's/^/FASTBOOT-OUTPUT: /'
echo "FASTBOOT-REPORT-END"
} >"$out" 2>&1
for dummy in $(seq 30); do
    systemctl is-active --quiet serial-getty@ttyS0.service && break
    sleep 1
done
sleep 2
cat "$out" >/dev/ttyS0
if grep -q 'fastboot.report=poweroff' /proc/cmdline; then
    sync
    systemctl --no-block poweroff
fi
EOF
chmod 0755 "$root/usr/local/sbin/fastboot-report"
cat >"$root/etc/systemd/system/fastboot-report.service" <<'EOF'
[Unit]
Description=fastboot lab: print cloud-init status and analyze blame to the console
ConditionKernelCommandLine=|fastboot.report=1
ConditionKernelCommandLine=|fastboot.report=poweroff
After=multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/fastboot-report

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/fastboot-report.service "$root/etc/systemd/system/multi-user.target.wants/fastboot-report.service"

# a generic image: no host identity
rm -f "$root/usr/sbin/policy-rc.d" "$root"/etc/ssh/ssh_host_* "$root/var/lib/dbus/machine-id"
: >"$root/etc/resolv.conf"
: >"$root/etc/machine-id"
echo localhost >"$root/etc/hostname"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log "$root"/tmp/*

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -1)
initrd=$(find "$root/boot" -maxdepth 1 -name 'initrd.img-*' | sort | tail -1)
if [ -z "$kernel" ] || [ -z "$initrd" ]; then
    die "no kernel/initrd in $root/boot"
fi
cp "$kernel" "$work/$NAME.vmlinuz"
cp "$initrd" "$work/$NAME.initrd"

echo "build-cloud-image: disk image (sfdisk + mke2fs -d, no mount)"
truncate -s "${SIZE_MIB}M" "$work/$NAME.raw"
echo "start=$((PART_START_MIB * 2048)), type=83" | sfdisk -q --label dos "$work/$NAME.raw"
mke2fs -q -F -t ext4 -L cloudimg-rootfs -E offset=$((PART_START_MIB * 1048576)) -d "$root" \
    "$work/$NAME.raw" "$((SIZE_MIB - PART_START_MIB))M"
qemu-img convert -f raw -O qcow2 "$work/$NAME.raw" "$work/$NAME.qcow2"

for f in raw qcow2 vmlinuz initrd; do
    mv -f "$work/$NAME.$f" "$OUT/$NAME.$f"
done
echo "$recipe" >"$OUT/$NAME.recipe"
echo "build-cloud-image: built $OUT/$NAME.{raw,qcow2,vmlinuz,initrd} (recipe $recipe)"
