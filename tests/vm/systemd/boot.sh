#!/bin/sh
# Boots the disk prepare.sh made (changes discarded) and prints the checks'
# output. Usage: boot.sh WORKDIR KERNEL_UNPACKED
set -eu
work=$(realpath "$1"); kernel=$(realpath "$2")
cd "$work"
rm -f out.txt console.txt
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -m 1536 -smp 1 -display none -monitor none \
	-no-reboot -nic none -kernel "$(ls "$kernel"/boot/vmlinuz-*)" -initrd initrd.cpio \
	-drive file=rootfs.img,format=raw,if=virtio,snapshot=on \
	-append 'console=ttyS0 panic=-1 quiet' \
	-serial file:console.txt -serial file:out.txt </dev/null || true
cat out.txt
