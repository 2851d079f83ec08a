#!/bin/sh
# Builds the systemd VM's disk: a Debian bookworm root filesystem with
# systemd (mmdebstrap, cached as rootfs.tar), the cloud kernel's modules,
# the package(s) to install and the checks (check.sh), run by a oneshot
# unit that writes to the second serial port and powers off.
# Usage: prepare.sh WORKDIR KERNEL_UNPACKED DEB...
set -eu
mkdir -p "$1"; work=$(realpath "$1"); kernel=$(realpath "$2"); shift 2
debs=""; for d in "$@"; do debs="$debs $(realpath "$d")"; done
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
cd "$work"
if [ ! -s rootfs.tar ]; then
	mmdebstrap --variant=apt --include=systemd,systemd-sysv,udev,dbus,iproute2,curl,procps,kmod \
		bookworm rootfs.tar.part
	mv rootfs.tar.part rootfs.tar
fi
K=$(ls -d "$kernel"/lib/modules/*)
rm -rf rootfs initrd
mkdir rootfs
tar -C rootfs -xf rootfs.tar
mkdir -p rootfs/lib/modules && cp -a "$K" rootfs/lib/modules/
chroot rootfs /sbin/depmod -a "$(basename "$K")"
echo lbvm > rootfs/etc/hostname
# No login prompts: the checks run by themselves.
ln -sf /dev/null rootfs/etc/systemd/system/serial-getty@ttyS0.service
ln -sf /dev/null rootfs/etc/systemd/system/getty@tty1.service
cat > rootfs/etc/systemd/system/lb-vm-test.service <<'UNIT'
[Unit]
Description=lb checks under systemd
After=multi-user.target
[Service]
Type=oneshot
StandardOutput=file:/dev/ttyS1
StandardError=inherit
ExecStart=/bin/sh -c '/root/lb/check.sh; echo "LB-VM-EXIT $?"'
ExecStopPost=/bin/systemctl poweroff --force --force
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/lb-vm-test.service rootfs/etc/systemd/system/multi-user.target.wants/lb-vm-test.service
mkdir -p rootfs/root/lb
cp "$here/check.sh" rootfs/root/lb/
chmod 755 rootfs/root/lb/check.sh
for d in $debs; do cp "$d" rootfs/root/lb/; done
rm -f rootfs.img
mkfs.ext4 -q -F -d rootfs -L lbroot rootfs.img 2G
rm -rf rootfs

# The initramfs: busybox and virtio's modules, to mount the disk and hand
# over to systemd.
mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk"
mkdir -p initrd/bin initrd/modules initrd/dev initrd/proc initrd/sys initrd/newroot
cp /bin/busybox initrd/bin/
for m in $mods; do cp "$(find "$K" -name "$m.ko")" initrd/modules/; done
cat > initrd/init <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in $mods; do insmod /modules/\$m.ko; done
i=0; while [ ! -b /dev/vda ] && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i+1)); done
mount -t ext4 /dev/vda /newroot || { echo "no root disk"; poweroff -f; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
INIT
chmod 755 initrd/init
(cd initrd && find . | busybox cpio -o -H newc > ../initrd.cpio 2>/dev/null)
rm -rf initrd
