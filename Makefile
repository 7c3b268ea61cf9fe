# panicbroker: one `make` builds the userspace parts into build/ (and the
# guest module when kernel headers for KDIR exist); `make check` runs the
# unit tests under ASan/UBSan and the real-QEMU end-to-end tests.

SHELL    := /bin/bash
BUILD    ?= build
CC       ?= cc
CFLAGS   ?= -O2 -g
PYTHON   ?= /usr/bin/python3
KDIR     ?= /lib/modules/$(shell uname -r)/build
PKGS     := json-c libsystemd libmicrohttpd libvirt libxml-2.0

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes \
            -Wstrict-prototypes -Wno-format-nonliteral
PB_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARN) -Ihostd -Iinclude $(PKG_CFLAGS) \
            -fstack-protector-strong -D_FORTIFY_SOURCE=2 -MMD -MP
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=all

# The data path, in order: a backend (backend_qmp*.c) or the broker channel
# (chan*.c) delivers an event to the VM's runner (vm.c, vm_chan.c), which
# asks the crash machine (crash_machine.c) and carries its actions out on the
# record (crash*.c, spool.c), the VM (the backend) and its snapshot.
LIB_SRCS    := util.c io.c log.c config.c qmp_msg.c qmp.c spool.c vmcore.c \
               crash.c crash_kdump.c crash_guest.c crash_snapshot.c crash_machine.c crash_machine_kdump.c \
               signature.c signature_text.c signature_reports.c index.c strpool.c
BACKEND_SRCS := backend.c backend_qmp.c backend_qmp_ops.c backend_qmp_dump.c
CHAN_SRCS   := chan.c chan_sweep.c chan_look.c chan_file.c chan_peek.c
DAEMON_SRCS := job.c snapshot.c observe.c $(BACKEND_SRCS) $(CHAN_SRCS) vm.c vm_ops.c vm_save.c vm_chan.c supervisor.c \
               daemon_options.c panicbrokerd.c
PBCTL_SRCS  := pbctl.c pbctl_daemon.c
# libvirt hosts (hostd/backend_libvirt.h): the connection and its domains,
# libvirt's event loop on sd-event, the backend, the dump child, the
# metadata; pbctl enable/disable edit domains through libvirt too.
LIBVIRT_SRCS := libvirt_host.c libvirt_event.c backend_libvirt.c libvirt_call.c \
                libvirt_meta.c libvirt_daemon.c
DAEMON_SRCS += $(LIBVIRT_SRCS)
PBCTL_SRCS  += pbctl_enable.c pbctl_hook.c libvirt_meta.c
# The local API (hostd/api.h): served by the daemon, spoken by pbctl over libcurl.
API_SRCS    := api.c api_reply.c api_socket.c api_v1.c
# Metrics (hostd/metrics.h) at GET /metrics (api_metrics.c); the TCP
# listener's bearer token (api_auth.c).
API_SRCS    += metrics.c metrics_daemon.c
API_SRCS    += api_metrics.c api_auth.c
DAEMON_SRCS += $(API_SRCS)
PBCTL_SRCS  += api_client.c
# Crashes told to the operator's tools (observe.h watchers): the journal,
# --on-crash-exec, the API's event feed and bucket counts (pbctl watch, buckets).
LIB_SRCS    += buckets.c
DAEMON_SRCS += journal.c crash_exec.c api_events.c
# The dashboard's HTML (hostd/html.h): escaping and the pages, no I/O.
HTML_SRCS   := html.c html_page.c html_crash.c
# The dashboard (hostd/api_html.h): GET /, /buckets, /crashes/ID.
DAEMON_SRCS += $(HTML_SRCS) api_html.c
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null)
PROTO_SRCS  := $(notdir $(wildcard protocol/*.c))
UNIT_TESTS  := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))

# $(call objs,VARIANT,SRCS)
objs = $(patsubst %.c,$(BUILD)/$(1)/%.o,$(2))

.SECONDARY:
.PHONY: all userspace protocol module guests asan unit fuzz fuzz-replay check check-fast component e2e demo clean help install bench bench-unload
all: userspace module

userspace: $(BUILD)/panicbrokerd $(BUILD)/pbctl $(BUILD)/pbvmcore protocol $(BUILD)/pbfakeguest \
		$(BUILD)/pbreport

# The broker channel library (protocol/), built on its own until hostd links it.
protocol: $(call objs,obj/protocol,$(PROTO_SRCS))

help:
	@echo "make              build build/panicbrokerd, build/pbctl (and the module if KDIR has headers)"
	@echo "make demo         boot a demo guest, panic it, show what panicbrokerd recorded"
	@echo "make check        unit tests (ASan/UBSan), fuzz replay, component tests (fake peers), end-to-end tests on real QEMU"
	@echo "make check-fast   unit + component tests only (no QEMU; under three minutes)"
	@echo "make guests       build the test-bed guests for the installed Debian kernels"
	@echo "make module KDIR=/usr/src/linux-headers-<version>   build guest-driver/panicbroker.ko"

$(BUILD)/obj/%.o: hostd/%.c
	@mkdir -p $(@D)
	$(CC) $(PB_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: hostd/%.c
	@mkdir -p $(@D)
	$(CC) $(PB_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BUILD)/obj/protocol/%.o: protocol/%.c
	@mkdir -p $(@D)
	$(CC) $(PB_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/protocol/%.o: protocol/%.c
	@mkdir -p $(@D)
	$(CC) $(PB_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BUILD)/asan/tests/%.o: tests/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(PB_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

$(BUILD)/panicbrokerd: $(call objs,obj,$(LIB_SRCS) $(DAEMON_SRCS)) \
		$(call objs,obj/protocol,$(PROTO_SRCS))
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/pbctl $(BUILD)/asan/pbctl: PKG_LIBS += $(CURL_LIBS)
$(BUILD)/pbctl: $(call objs,obj,$(LIB_SRCS) $(PBCTL_SRCS)) \
		$(call objs,obj/protocol,$(PROTO_SRCS))
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/pbvmcore: $(call objs,obj,util.c io.c vmcore.c vmcore_tool.c)
	$(CC) $(CFLAGS) -o $@ $^

# pbreport runs in the guest's kdump kernel (guest-tools/): static and small,
# so that it fits a kdump initramfs as it is.
$(BUILD)/pbreport: guest-tools/pbreport.c include/panicbroker/mailbox.h hostd/version.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -Os $(WARN) -Iinclude -Ihostd -ffunction-sections -fdata-sections \
		-static -s -Wl,--gc-sections -o $@ $<

# The fake guest of tests/e2e/test_mailbox.py: plays the guest side of the mailbox.
$(BUILD)/pbfakeguest: tests/tools/pbfakeguest.c $(call objs,obj/protocol,$(PROTO_SRCS))
	$(CC) $(PB_CFLAGS) $(CFLAGS) -o $@ $^

# pbsig: a panic text's crash signature as JSON (tests/e2e/test_signature_live.py,
# make capture-oopses).
userspace: $(BUILD)/pbsig
$(BUILD)/pbsig: tests/tools/pbsig.c $(call objs,obj,signature.c signature_text.c signature_reports.c)
	$(CC) $(PB_CFLAGS) $(CFLAGS) -o $@ $(filter %.c %.o,$^) $(PKG_LIBS)

# Sanitized builds: the daemon the end-to-end tests run, and the unit tests.
asan: $(BUILD)/asan/panicbrokerd $(BUILD)/asan/pbctl $(addprefix $(BUILD)/asan/,$(UNIT_TESTS))

$(BUILD)/asan/panicbrokerd: $(call objs,asan,$(LIB_SRCS) $(DAEMON_SRCS)) \
		$(call objs,asan/protocol,$(PROTO_SRCS))
	$(CC) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/asan/pbctl: $(call objs,asan,$(LIB_SRCS) $(PBCTL_SRCS)) \
		$(call objs,asan/protocol,$(PROTO_SRCS))
	$(CC) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/asan/test_%: $(BUILD)/asan/tests/test_%.o $(call objs,asan,$(LIB_SRCS)) \
		$(call objs,asan/protocol,$(PROTO_SRCS))
	$(CC) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

$(BUILD)/asan/test_api: $(call objs,asan,$(API_SRCS))
$(BUILD)/asan/test_html: $(call objs,asan,$(HTML_SRCS))
$(BUILD)/asan/test_chan: $(call objs,asan,$(CHAN_SRCS))
$(BUILD)/asan/test_chan_guard: $(call objs,asan,$(CHAN_SRCS))
$(BUILD)/asan/test_chan_peek: $(call objs,asan,$(CHAN_SRCS))
$(BUILD)/asan/test_job: $(call objs,asan,job.c)
$(BUILD)/asan/test_crash_exec: $(call objs,asan,job.c crash_exec.c)
$(BUILD)/asan/test_metrics: $(call objs,asan,metrics.c metrics_daemon.c)
$(BUILD)/asan/test_api_auth: $(call objs,asan,api_auth.c)
$(BUILD)/asan/test_backend_qmp: $(call objs,asan,$(BACKEND_SRCS))
$(BUILD)/asan/test_libvirt_meta: $(call objs,asan,libvirt_meta.c)

unit: asan
	@set -e; for t in $(UNIT_TESTS); do \
		echo "== $$t"; $(BUILD)/asan/$$t; \
	done

# libFuzzer targets (clang): built with ASan/UBSan, run briefly by make check.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

$(BUILD)/fuzz/fuzz_qmp_msg: tests/fuzz/fuzz_qmp_msg.c hostd/qmp_msg.c hostd/util.c
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Ihostd $(PKG_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/fuzz/fuzz_vmcore: tests/fuzz/fuzz_vmcore.c hostd/vmcore.c hostd/util.c hostd/io.c
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Ihostd $(FUZZ_FLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz_mbox: tests/fuzz/fuzz_mbox.c protocol/pb_mbox.c
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Iinclude $(FUZZ_FLAGS) -o $@ $^

$(BUILD)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c hostd/config.c hostd/util.c hostd/log.c
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Ihostd -Iinclude $(PKG_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

FUZZ_RECORD_SRCS := $(addprefix hostd/,util.c io.c log.c config.c spool.c crash.c crash_kdump.c \
	crash_guest.c crash_snapshot.c signature.c signature_text.c signature_reports.c index.c strpool.c)
$(BUILD)/fuzz/fuzz_record: tests/fuzz/fuzz_record.c $(FUZZ_RECORD_SRCS)
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Ihostd -Iinclude $(PKG_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

FUZZ_API_SRCS := $(addprefix hostd/,util.c io.c log.c config.c spool.c $(API_SRCS) \
	crash.c crash_kdump.c crash_guest.c crash_snapshot.c signature.c signature_text.c \
	signature_reports.c index.c strpool.c observe.c)
$(BUILD)/fuzz/fuzz_api: tests/fuzz/fuzz_api.c $(FUZZ_API_SRCS)
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Ihostd -Iinclude $(PKG_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/fuzz/fuzz_signature: tests/fuzz/fuzz_signature.c hostd/signature.c hostd/signature_text.c hostd/signature_reports.c
	@mkdir -p $(@D)
	clang -std=gnu11 -D_GNU_SOURCE -Ihostd $(PKG_CFLAGS) $(FUZZ_FLAGS) -o $@ $^ $(PKG_LIBS)

# make fuzz: the campaign (not in CI): every target FUZZ_SECONDS (600), two at a
# time, from the kept corpus; what it finds new is merged back into
# tests/fuzz/corpus/ (minimised), and the figures go to build/fuzz/campaign.txt.
# make fuzz-replay (in make check): every target over its kept corpus, once.
fuzz: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
	tests/fuzz/campaign.sh $(BUILD)/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-replay: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $$t (replay of tests/fuzz/corpus/$${t#fuzz_})"; \
		$(BUILD)/fuzz/$$t -runs=0 -max_len=200000 tests/fuzz/corpus/$${t#fuzz_} 2>&1 | \
			grep -E '^(==|SUMMARY|Done|INFO: seed corpus)' ; \
		test $${PIPESTATUS[0]} -eq 0; \
	done

module:
	@if [ -d "$(KDIR)" ]; then \
		$(MAKE) -C guest-driver KDIR=$(KDIR); \
	else \
		echo "make: no kernel headers at $(KDIR): guest module not built" \
		     "(make module KDIR=/usr/src/linux-headers-<version>, or make guests)"; \
	fi

guests: $(BUILD)/pbreport
	tests/guest/build-guests.sh --out $(BUILD)/guest --pbreport $(BUILD)/pbreport

# The daemon with fake peers (fake QMP monitors, fake guests): seconds, no QEMU.
# PYTEST_JOBS=2 runs them two at a time (pytest-xdist: each test has its own
# spool, sockets and peers); one at a time by default, as the UNLOAD bounds of
# the fake guests (100 ms) are real-time and CI has two cores.
PYTEST_JOBS ?= 0
component: userspace asan
	PB_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -v -n $(PYTEST_JOBS) tests/component

# Real QEMU, real Debian kernels, the real module: minutes.
e2e: userspace asan guests
	PB_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -v tests/e2e

# The developer's loop: unit + component, under three minutes.
check-fast: unit component

check: userspace unit fuzz-replay component e2e

# The alerting rules and the Grafana dashboard (monitoring/README.md):
# promtool checks the rules and runs their unit tests; the dashboard's
# queries are checked by promtool too. Part of check and check-fast.
.PHONY: monitoring
monitoring:
	@command -v promtool >/dev/null || { echo "make monitoring: no promtool (apt install prometheus)"; exit 1; }
	promtool check rules monitoring/panicbroker-rules.yml
	promtool test rules monitoring/tests/*.yml
	$(PYTHON) monitoring/check-dashboard.py monitoring/grafana-panicbroker.json \
		monitoring/panicbroker-rules.yml monitoring/tests/*.yml
check-fast: monitoring
check: monitoring

demo: userspace guests
	PB_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/demo.py

clean:
	rm -rf $(BUILD)
	-$(MAKE) -C guest-driver clean KDIR=$(KDIR) >/dev/null 2>&1

# The compilers' dependency files only (build/ also holds guest images full of *.d).
-include $(wildcard $(addsuffix /*.d,$(addprefix $(BUILD)/,obj obj/protocol asan asan/protocol asan/tests)))

PREFIX  ?= /usr/local
DESTDIR ?=
install: userspace
	install -D -m 0755 $(BUILD)/panicbrokerd $(DESTDIR)$(PREFIX)/sbin/panicbrokerd
	install -D -m 0755 $(BUILD)/pbctl $(DESTDIR)$(PREFIX)/bin/pbctl
	install -D -m 0755 $(BUILD)/pbreport $(DESTDIR)$(PREFIX)/sbin/pbreport
	install -D -m 0644 docs/panicbrokerd.8 $(DESTDIR)$(PREFIX)/share/man/man8/panicbrokerd.8
	install -D -m 0644 docs/pbctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/pbctl.1
	install -D -m 0644 docs/pbreport.1 $(DESTDIR)$(PREFIX)/share/man/man1/pbreport.1
	install -D -m 0644 systemd/panicbrokerd.service $(DESTDIR)$(PREFIX)/lib/systemd/system/panicbrokerd.service
	install -D -m 0755 systemd/libvirt-hook $(DESTDIR)/etc/libvirt/hooks/qemu.d/panicbroker
	install -D -m 0644 systemd/panicbroker.catalog $(DESTDIR)/usr/lib/systemd/catalog/panicbroker.catalog
	install -D -m 0644 systemd/panicbrokerd.conf $(DESTDIR)/etc/panicbroker/panicbrokerd.conf.example

# Snapshot benchmark: dump-guest-memory by hand vs panicbrokerd's snapshots,
# per guest size and format (tests/bench/README.md). Options go in BENCH_ARGS,
# e.g. make bench BENCH_ARGS="--sizes 1 --series 6.12"; BENCH_ARGS="--busy" fills
# the guests' memory first (busy guests).
bench: userspace guests
	PB_BUILD=$(abspath $(BUILD)) PB_DAEMON=$(abspath $(BUILD))/panicbrokerd \
		$(PYTHON) tests/bench/snapshot-bench.py $(BENCH_ARGS)

# Hypervisor-tier benchmark: the tier's duration and the UNLOAD round trip,
# median of several panics, beside pvpanic alone and a dead daemon
# (tests/bench/README.md). Options in BENCH_ARGS, e.g. BENCH_ARGS="--panics 3".
bench-unload: userspace guests
	PB_BUILD=$(abspath $(BUILD)) PB_DAEMON=$(abspath $(BUILD))/panicbrokerd \
		$(PYTHON) tests/bench/unload-bench.py $(BENCH_ARGS)

# Local API benchmark: latency of /v1/crashes and the dashboard, and the
# daemon's start time, on a spool of 100,000 synthetic records (generated once
# into build/bench-api; tests/bench/README.md). Options in BENCH_ARGS, e.g.
# BENCH_ARGS="--records 10000 --requests 50".
.PHONY: bench-api
bench-api: userspace
	PB_BUILD=$(abspath $(BUILD)) PB_DAEMON=$(abspath $(BUILD))/panicbrokerd \
		$(PYTHON) tests/bench/api-bench.py $(BENCH_ARGS)

# Fragments of mk/: make deb (Debian packages), make realguest (tests in a real Debian guest).
include $(wildcard mk/*.mk)

# The crash-signature corpus (tests/golden/oops/): every kind of crash of
# tests/guest/pbtest-oops on every series, captured again from live guests
# (about 20 boots). Options in CAPTURE_ARGS, e.g. CAPTURE_ARGS="--series 6.12 --kinds oom".
.PHONY: capture-oopses
capture-oopses: userspace guests
	PB_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/tools/capture-oopses.py $(CAPTURE_ARGS)
