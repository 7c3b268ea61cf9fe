# SPDX-License-Identifier: MIT
# make realguest: panicbroker's packages in a real Debian 12 guest
# (tests/realguest/README.md): the host-side hook tests, the packages'
# install/upgrade/purge in a chroot, and end to end in QEMU (TCG) with
# systemd, kdump-tools, DKMS and a kernel upgrade with apt. Needs root.
# The guest's base file system is cached outside the tree
# ($(REALGUEST_CACHE), keyed by its inputs): the first run builds it.
#
#   make realguest-image      only the cached base (mmdebstrap)

.PHONY: realguest realguest-image

REALGUEST_CACHE ?= /var/cache/panicbroker-test
REALGUEST_ARGS  ?= -v

realguest: userspace asan deb realguest-image
	PB_BUILD=$(abspath $(BUILD)) PB_IMAGE_CACHE=$(REALGUEST_CACHE) \
		$(PYTHON) -m pytest $(REALGUEST_ARGS) tests/realguest

realguest-image:
	PB_IMAGE_CACHE=$(REALGUEST_CACHE) tests/realguest/image.sh base

# part of `make check`, after everything else (the include comes last)
check: realguest
