#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The fuzzing campaign behind `make fuzz`: each target for SECONDS, two at a
# time, starting from its kept corpus (tests/fuzz/corpus/NAME); the new
# inputs are merged back into the kept corpus, minimised. A crash stops the
# campaign with the reproducer's path. Figures: DIR/campaign.txt.
set -euo pipefail
dir=$1 seconds=$2
shift 2
top=$(cd "$(dirname "$0")/../.." && pwd)
out="$dir/campaign.txt"
: > "$out"
echo "campaign $(date -u +%FT%TZ), ${seconds} s per target, load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out"

run_one() {
	local t=$1 name=${1#fuzz_}
	local work="$dir/corpus-$name" kept="$top/tests/fuzz/corpus/$name" log="$dir/$t.log"
	mkdir -p "$work" "$kept"
	# -fork keeps going past a finding only to report it; a crash fails.
	"$dir/$t" -max_total_time="$seconds" -max_len=200000 -print_final_stats=1 \
		-artifact_prefix="$dir/$t-" "$work" "$kept" > "$log" 2>&1 || {
		echo "$t: FAILED, see $log" >> "$out"; return 1; }
	"$dir/$t" -merge=1 -max_len=200000 "$kept" "$work" >> "$log" 2>&1
	printf '%s: %s execs in %s s, cov %s, kept corpus %s files\n' "$t" \
		"$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -1)" "$seconds" \
		"$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)" \
		"$(find "$kept" -type f | wc -l)" >> "$out"
}

pids=()
for t in "$@"; do
	run_one "$t" &
	pids+=($!)
	if ((${#pids[@]} == 2)); then
		wait "${pids[0]}"
		pids=("${pids[@]:1}")
	fi
done
for p in "${pids[@]}"; do wait "$p"; done
cat "$out"
