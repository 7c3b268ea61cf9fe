#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The real Debian 12 guest of tests/realguest: built with mmdebstrap from
# Debian's packages only, set up the way an admin sets up a VM, then given
# this build's panicbroker packages with apt.
#
#   image.sh base              build (or find) the cached base file system;
#                              prints the path of its tarball
#   image.sh disk DEBDIR OUT   OUT/disk.img: the base + apt install of the
#                              panicbroker-dkms and panicbroker-guest .debs in
#                              DEBDIR (DKMS builds the module in the image);
#                              OUT/boot/KVER/{vmlinuz,initrd.img,kver} for
#                              QEMU's direct kernel boot
#   image.sh unpack DIR [DEBDIR]  the base in DIR, apt on local repositories
#                              (and DEBDIR's .debs), for a chroot
#   image.sh chroot DIR CMD... CMD in that chroot (/proc, /sys, /dev mounted)
#   image.sh key               prints the cache key
#
# The base is the expensive part (mmdebstrap downloads ~450 MB and installs
# two kernels' headers and a compiler): it is kept in $PB_IMAGE_CACHE
# (default /var/cache/panicbroker-test, outside any clone, so that CI's fresh
# clones share it) under a key made of this script's own text, which holds
# every input (suite, packages, settings). Change anything here and the key
# changes; old keys are removed when a new base is built.
#
# The base holds:
#   - Debian 12, systemd, kdump-tools + makedumpfile + kexec-tools, dkms with
#     a compiler, qemu-guest-agent (the tests' way in), the 6.1 kernel
#     (linux-image-amd64) with its headers;
#   - /var/local/pb-kernels: a file: apt repository with the 6.12 kernel and
#     headers (linux-image-6.12-amd64, linux-headers-6.12-amd64) and what they
#     need, for the kernel upgrade done with apt inside the guest (the guest
#     has no network);
#   - /var/local/pb-hostdeps: the same for the libraries the host package
#     panicbroker needs (tests/realguest/test_packages.py);
#   - /etc/fstab (root = /dev/vda, ext4; a 16 MiB tmpfs /var/crash-small, a
#     kdump target too small for a dump), kdump-tools enabled, kexec-tools not
#     taking over reboots, initramfs-tools MODULES=list (virtio + ext4) in
#     /etc/initramfs-tools/conf.d/pbguest: the image is built in a chroot,
#     where MODULES=dep (kdump-tools' choice) fails looking at the build
#     machine.
#
# The guest's kernel command line (given by QEMU) has root=/dev/vda and
# crashkernel=; kdump-tools takes the rest from /proc/cmdline.
#
# Needs root (chroot), mmdebstrap, apt-utils (apt-ftparchive), e2fsprogs.
set -euo pipefail

SELF=$(readlink -f "$0")

# --- base: begin (the cache key is the hash of the text down to "base: end")
SUITE=bookworm
MIRRORS=(
	"deb http://deb.debian.org/debian bookworm main"
	"deb http://deb.debian.org/debian bookworm-updates main"
	"deb http://deb.debian.org/debian-security bookworm-security main"
)
PACKAGES=(
	systemd-sysv udev dbus kmod procps e2fsprogs zstd file less
	initramfs-tools
	linux-image-amd64 linux-headers-amd64
	kdump-tools makedumpfile kexec-tools
	dkms
	qemu-guest-agent
)
# what the upgrade test installs with apt inside the guest
UPGRADE_PACKAGES=(linux-image-6.12-amd64 linux-headers-6.12-amd64)
# what the host package needs (test_packages.py installs it in a chroot of
# this base, offline)
HOST_PACKAGES=(libjson-c5 libmicrohttpd12 libcurl4 libsystemd0 libvirt0 libxml2)
DISK_SIZE=6G
CACHE=${PB_IMAGE_CACHE:-/var/cache/panicbroker-test}

die() {
	echo "image.sh: $*" >&2
	exit 1
}

key() {
	sed -n '/^# --- base: begin/,/^# --- base: end/p' "$SELF" | sha256sum | cut -c 1-16
}

# customize ROOT: run by mmdebstrap once every package is installed
customize() {
	local root=$1

	# the 6.12 series for the upgrade test: downloaded now, installed later
	# by apt in the guest from a file: repository
	chroot "$root" apt-get install -y -q --download-only --no-install-recommends \
		"${UPGRADE_PACKAGES[@]}"
	mkdir -p "$root/var/local/pb-kernels"
	mv "$root"/var/cache/apt/archives/*.deb "$root/var/local/pb-kernels/"
	(cd "$root/var/local/pb-kernels" && apt-ftparchive packages . >Packages)
	chroot "$root" apt-get install -y -q --download-only --no-install-recommends \
		"${HOST_PACKAGES[@]}"
	mkdir -p "$root/var/local/pb-hostdeps"
	mv "$root"/var/cache/apt/archives/*.deb "$root/var/local/pb-hostdeps/"
	(cd "$root/var/local/pb-hostdeps" && apt-ftparchive packages . >Packages)

	echo pbguest >"$root/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tpbguest\n' >"$root/etc/hosts"
	cat >"$root/etc/fstab" <<-'EOF'
		/dev/vda	/	ext4	rw,errors=remount-ro	0	1
		# a kdump target too small for any dump (tests/realguest: the failure case)
		tmpfs	/var/crash-small	tmpfs	size=16m,mode=0700	0	0
	EOF
	mkdir -p "$root/var/crash-small"

	# kdump-tools: on; its defaults otherwise (KDUMP_COREDIR=/var/crash,
	# MAKEDUMP_ARGS="-c -d 31")
	sed -i 's/^USE_KDUMP=.*/USE_KDUMP=1/' "$root/etc/default/kdump-tools"
	grep -q '^USE_KDUMP=1' "$root/etc/default/kdump-tools" ||
		echo USE_KDUMP=1 >>"$root/etc/default/kdump-tools"
	# kexec-tools must not turn reboots into kexec (the guest reboots after
	# its dump through the firmware, as QEMU's reset)
	if [ -f "$root/etc/default/kexec" ]; then
		sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' "$root/etc/default/kexec"
	fi

	# MODULES=list since before the kernel came (the setup hook): the drivers
	printf '%s\n' virtio_pci virtio_blk virtio_console ext4 >>"$root/etc/initramfs-tools/modules"

	# nothing periodic in a test guest
	chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer \
		dpkg-db-backup.timer e2scrub_all.timer fstrim.timer >/dev/null 2>&1 || true
	# an empty root password on the serial console, for a human debugging it
	chroot "$root" passwd -d root >/dev/null

	# the initramfs of the 6.1 kernel and kdump-tools' own, with the settings above
	chroot "$root" update-initramfs -u -k all
	local kver
	for kver in $(chroot "$root" linux-version list); do
		chroot "$root" /etc/kernel/postinst.d/kdump-tools "$kver"
	done
}
base() {
	local key dir tar
	key=$(key)
	dir=$CACHE/realguest-$key
	tar=$dir/base.tar
	if [ -s "$tar" ]; then
		echo "$tar"
		return
	fi
	command -v mmdebstrap >/dev/null || die "mmdebstrap missing: scripts/install-deps.sh"
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	if [ -s "$tar" ]; then # built by another run meanwhile
		echo "$tar"
		return
	fi
	echo "image.sh: building the base image $key (once; several minutes)" >&2
	local t0=$SECONDS
	rm -rf "$dir"
	mkdir -p "$dir"
	# shellcheck disable=SC2016 # "$1" in the hooks is mmdebstrap's
	mmdebstrap --variant=minbase --mode=root --format=tar \
		--aptopt='APT::Install-Recommends "false"' \
		--include="$(
			IFS=,
			echo "${PACKAGES[*]}"
		)" \
		--setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"' \
		--setup-hook='echo MODULES=list >"$1/etc/initramfs-tools/conf.d/pbguest"' \
		--customize-hook="'$SELF' customize \"\$1\"" \
		"$SUITE" "$tar.tmp" "${MIRRORS[@]}" >&2
	mv "$tar.tmp" "$tar"
	echo "image.sh: base image built in $((SECONDS - t0)) s: $tar" >&2
	# older bases are dead weight
	find "$CACHE" -mindepth 1 -maxdepth 1 -name 'realguest-*' ! -name "realguest-$key" \
		-exec rm -rf {} + 2>/dev/null || true
	echo "$tar"
}
# --- base: end

# in_chroot ROOT CMD...: CMD in ROOT with /proc, /sys, /dev, in a private
# mount namespace (the mounts go away with it, whatever happens)
in_chroot() {
	local root=$1
	shift
	# shellcheck disable=SC2016 # expanded by that sh
	unshare --mount --propagation private sh -euc '
		root=$1; shift
		mount -t proc proc "$root/proc"
		mount -t sysfs sys "$root/sys"
		mount --rbind /dev "$root/dev"
		exec chroot "$root" "$@"' sh "$root" "$@"
}

# unpack DIR [DEBDIR]: the base file system in DIR (empty first), apt
# pointed at local repositories only (the guest has no network): the
# image's own (/var/local/pb-kernels, /var/local/pb-hostdeps) and DEBDIR's
# .debs copied to /var/local/panicbroker, the way an admin points apt at a
# directory of packages; services do not start in it (policy-rc.d, removed
# by seal)
unpack() {
	local root=$1 debdir=${2:-} tar
	tar=$(base)
	rm -rf "${root:?}"
	mkdir -p "$root"
	tar -C "$root" -xf "$tar"
	rm -f "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*
	{
		echo "deb [trusted=yes] file:/var/local/pb-kernels ./"
		echo "deb [trusted=yes] file:/var/local/pb-hostdeps ./"
	} >"$root/etc/apt/sources.list.d/local.list"
	if [ -n "$debdir" ]; then
		mkdir -p "$root/var/local/panicbroker"
		cp "$debdir"/*.deb "$root/var/local/panicbroker/"
		(cd "$root/var/local/panicbroker" && apt-ftparchive packages . >Packages)
		echo "deb [trusted=yes] file:/var/local/panicbroker ./" \
			>>"$root/etc/apt/sources.list.d/local.list"
	fi
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	in_chroot "$root" apt-get update -q >/dev/null
}

disk() {
	local debdir out root kver
	debdir=$(readlink -f "$1")
	mkdir -p "$2"
	out=$(readlink -f "$2")
	root=$out/root
	rm -rf "${out:?}/boot" "$out/disk.img"
	unpack "$root" "$debdir"
	# DKMS builds the module for the installed kernel; the initramfs hook and
	# dkms.conf's POST_INSTALL rebuild kdump-tools' initramfs with it
	in_chroot "$root" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q panicbroker-dkms panicbroker-guest
	rm -f "$root/usr/sbin/policy-rc.d"
	in_chroot "$root" apt-get clean

	for kver in $(in_chroot "$root" linux-version list); do
		# as after a first boot: kdump-config load rebuilds the kdump
		# initramfs when /etc/kdump/sysctl.conf differs from the copy it keeps
		# (none yet), which under TCG costs a minute of every test run
		cp "$root/etc/kdump/sysctl.conf" "$root/var/lib/kdump/latest_sysctls-$kver"
		mkdir -p "$out/boot/$kver"
		cp "$root/boot/vmlinuz-$kver" "$out/boot/$kver/vmlinuz"
		cp "$root/boot/initrd.img-$kver" "$out/boot/$kver/initrd.img"
		echo "$kver" >"$out/boot/$kver/kver"
	done
	truncate -s "$DISK_SIZE" "$out/disk.img.tmp"
	mke2fs -q -t ext4 -L pbroot -d "$root" "$out/disk.img.tmp"
	mv "$out/disk.img.tmp" "$out/disk.img"
	rm -rf "$root"
}

case "${1:-}" in
key) key ;;
base) base ;;
customize) customize "$2" ;;
disk)
	[ $# -eq 3 ] || die "usage: image.sh disk DEBDIR OUT"
	disk "$2" "$3"
	;;
unpack)
	[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: image.sh unpack DIR [DEBDIR]"
	unpack "$2" "${3:+$(readlink -f "$3")}"
	;;
chroot)
	[ $# -ge 3 ] || die "usage: image.sh chroot DIR CMD..."
	shift
	in_chroot "$@"
	;;
*) die "usage: image.sh base | disk DEBDIR OUT | unpack DIR [DEBDIR] | chroot DIR CMD... | key" ;;
esac
