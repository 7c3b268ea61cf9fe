#!/usr/bin/env bash
# Install the Debian packages panicbroker needs to build, to run its demo and
# to run its tests. Safe to run again; installs only what is missing.
#
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --build    only what `make` needs
set -euo pipefail

build_pkgs=(
	build-essential pkg-config
	libjson-c-dev libsystemd-dev libcmocka-dev
	libmicrohttpd-dev libcurl4-openssl-dev  # the local API: daemon side, pbctl side
	libvirt-dev libxml2-dev          # libvirt hosts: the backend, pbctl enable
	clang llvm                      # sanitizer and fuzzer builds
)
test_pkgs=(
	qemu-system-x86 qemu-utils
	busybox-static kexec-tools cpio xz-utils zstd kmod
	python3 python3-pytest python3-pytest-xdist
	makedumpfile                    # panicbrokerd reads each snapshot back with it
	crash                           # make bench: reads each busy-guest snapshot (with a vmlinux)
	# libvirt hosts (tests/e2e/test_libvirt.py): libvirtd and virtlogd started by
	# hand; not libvirt-daemon-system, whose services want systemd
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
	chromium                        # the dashboard's pages in a headless browser (tests/component/test_dashboard.py)
	prometheus                      # promtool: /metrics and monitoring/ rules (make monitoring)
	# guest kernels: the 6.1 series (bookworm's default) and the 6.12 series,
	# each with the headers the module is built against
	linux-image-amd64 linux-headers-amd64
	linux-image-6.12-amd64 linux-headers-6.12-amd64
	# make deb, and the real Debian guest of tests/realguest
	dpkg-dev debhelper dh-dkms dkms lintian
	mmdebstrap apt-utils e2fsprogs
)

pkgs=("${build_pkgs[@]}")
[[ "${1:-}" == --build ]] || pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#pkgs[@]} packages present"
	exit 0
fi

sudo=
[[ $(id -u) -eq 0 ]] || sudo=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
