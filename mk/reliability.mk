# Reliability and scale (tests/reliability/, tests/bench/scale-bench.py):
# the daemon killed with SIGKILL at random points of crash handling beside
# fake peers, the spool's disk full or read-only, corrupted records; and one
# daemon supervising a thousand fake VMs.

.PHONY: reliability check-reliability bench-scale

# make check: the fault cases, a short kill -9 campaign (PB_KILLS kills,
# 20 by default) and PB_QEMU_KILLS (3) with a real guest: a few minutes.
# PB_SEED=N repeats a campaign.
PB_KILLS ?= 20
reliability: userspace asan guests
	PB_BUILD=$(abspath $(BUILD)) PB_KILLS=$(PB_KILLS) $(PYTHON) -m pytest -v tests/reliability
check: reliability

# The full campaign: 100 kills, then the fault cases.
check-reliability: userspace asan guests
	PB_BUILD=$(abspath $(BUILD)) PB_KILLS=100 $(PYTHON) -m pytest -v -s tests/reliability

# One daemon (the plain build), 1,000 fake VMs, every figure of issue 12 item 1
# beside its target (tests/bench/README.md). Options in BENCH_ARGS, e.g.
# BENCH_ARGS="--vms 200 --idle-seconds 10".
bench-scale: userspace
	PB_BUILD=$(abspath $(BUILD)) PB_DAEMON=$(abspath $(BUILD))/panicbrokerd \
		$(PYTHON) tests/bench/scale-bench.py $(BENCH_ARGS)
