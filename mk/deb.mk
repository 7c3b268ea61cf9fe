# SPDX-License-Identifier: MIT
# make deb: the Debian packages (debian/) built with dpkg-buildpackage from a
# copy of the source tree (the files git knows or would add, as they are in
# the work tree; with DEB_REV=REV, git's REV instead) in a temporary
# directory, into $(BUILD)/deb/, then checked with lintian (errors fail).
# (Not built under $(BUILD): the top Makefile includes every *.d found there,
# and a package tree has systemd's *.service.d directories.)
#
#   panicbroker        host: panicbrokerd + unit + config, pbctl, pbvmcore
#   panicbroker-dkms   the module's source for DKMS
#   panicbroker-guest  pbreport, the kdump-tools hook, modules-load.d

.PHONY: deb

DEB_VERSION := $(shell dpkg-parsechangelog -l debian/changelog -S Version 2>/dev/null)
DEB_DIR     := $(BUILD)/deb

deb:
	@command -v dpkg-buildpackage >/dev/null && command -v dh_dkms >/dev/null || \
		{ echo "make deb: needs dpkg-dev, debhelper, dh-dkms (scripts/install-deps.sh)" >&2; exit 1; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	set -e; work=$$(mktemp -d /tmp/panicbroker-deb.XXXXXX); \
	trap 'rm -rf "$$work"' EXIT; \
	src=$$work/panicbroker-$(DEB_VERSION); mkdir -p $$src; \
	if [ -n "$(DEB_REV)" ]; then \
		git archive --format=tar $(DEB_REV) | tar -C $$src -xf -; \
	else \
		git ls-files -z --cached --others --exclude-standard | grep -zv '^build/' | \
			xargs -0 -I{} find {} -maxdepth 0 -type f -print0 | \
			tar --null -T - -cf - | tar -C $$src -xf -; \
	fi; \
	(cd $$src && dpkg-buildpackage -us -uc -b) >$(DEB_DIR)/build.log 2>&1 || \
		{ tail -40 $(DEB_DIR)/build.log; exit 1; }; \
	mv $$work/*.deb $$work/*.changes $$work/*.buildinfo $(DEB_DIR)/
	set -o pipefail; lintian --fail-on error $(DEB_DIR)/panicbroker_$(DEB_VERSION)_*.changes 2>&1 | tee $(DEB_DIR)/lintian.log
	@ls -l $(DEB_DIR)/*.deb
