#!/usr/bin/env bash
# Build the guests of the panicbroker test bed: for each kernel series, the
# newest installed Debian kernel of that series, an initramfs that loads
# panicbroker.ko and a crash kernel, and the kdump initramfs.
#
#   tests/guest/build-guests.sh [--out DIR] [--src DIR] [--no-module]
#                               [--pbreport FILE] [SERIES...]
#
#   --out DIR     output directory (default: build/guest under the repo top)
#   --src DIR     directory holding guest-driver/ and include/ as siblings
#                 (default: the repo top; env PB_DRIVER_SRC also sets it)
#   --no-module   build guests without panicbroker.ko (the guest then reports
#                 "module load failed: panicbroker.ko not in initramfs")
#   --pbreport FILE  the static pbreport to put into both initramfs images as
#                 /bin/pbreport (default: build/pbreport under the repo top,
#                 brought up to date with `make build/pbreport` first; env
#                 PB_PBREPORT also sets it, and is then used as it is)
#   SERIES        kernel series such as 6.1 or 6.12 (default: 6.1 6.12)
#
# Output, per kernel release KVER (see tests/guest/README.md):
#   DIR/KVER/{vmlinuz,initrd.img,kdump.img,panicbroker.ko,pbtest_oops.ko,kver}
#   (initrd.img and kdump.img hold pbreport as /bin/pbreport; initrd.img holds
#   pbfill, the memory filler of `snapshot-bench.py --busy`, as /bin/pbfill)
#   DIR/pbfill           tests/guest/pbfill.c, static
#   DIR/KVER/src/        copies of the module sources, built there
#   DIR/SERIES -> KVER   symlink
# Only what changed is rebuilt; one line is printed per artifact.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/guest
src_top=${PB_DRIVER_SRC:-$top}
with_module=1
pbreport=${PB_PBREPORT:-}
series=()

die() {
	echo "build-guests: error: $*" >&2
	exit 1
}
usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

while (($#)); do
	case "$1" in
	--out) (($# >= 2)) || die "--out needs a directory"; out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--src) (($# >= 2)) || die "--src needs a directory"; src_top=$2; shift 2 ;;
	--src=*) src_top=${1#*=}; shift ;;
	--no-module) with_module=0; shift ;;
	--pbreport) (($# >= 2)) || die "--pbreport needs a file"; pbreport=$2; shift 2 ;;
	--pbreport=*) pbreport=${1#*=}; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) series+=("$1"); shift ;;
	esac
done
((${#series[@]})) || series=(6.1 6.12)

# --- host tools -------------------------------------------------------------
for tool in cpio make sha256sum flock; do
	command -v "$tool" >/dev/null || die "$tool not found: run scripts/install-deps.sh"
done
busybox=$(command -v busybox) || die "busybox not found: run scripts/install-deps.sh (busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked; the guests need busybox-static (run scripts/install-deps.sh)"
fi
kexec=$(command -v kexec || true)
[[ -z $kexec && -x /usr/sbin/kexec ]] && kexec=/usr/sbin/kexec
[[ -x $kexec ]] || die "kexec not found: run scripts/install-deps.sh (kexec-tools)"

# pbreport, static: the guests' inits run it as /bin/pbreport
if [[ -z $pbreport ]]; then
	pbreport=$top/build/pbreport
	make -C "$top" --no-print-directory -s build/pbreport >&2 ||
		die "building $pbreport failed (make build/pbreport in $top)"
fi
[[ -f $pbreport && -x $pbreport ]] ||
	die "$pbreport does not exist or is not executable (make build/pbreport, or --pbreport FILE)"
if ldd "$pbreport" >/dev/null 2>&1; then
	die "$pbreport is dynamically linked; the guests need the static one (make build/pbreport)"
fi
pbreport=$(readlink -f "$pbreport")

mkdir -p "$out"
out=$(cd "$out" && pwd)
# One build at a time per output directory.
exec 9>"$out/.lock"
flock 9

# pbfill, static: fills the guest's memory for the busy-guest snapshot bench
pbfill=$out/pbfill
if [[ -x $pbfill && ! $here/pbfill.c -nt $pbfill ]]; then
	printf '%-10s %s\n' unchanged "$pbfill"
else
	${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Wno-format-nonliteral -static -s \
		-o "$pbfill.tmp" "$here/pbfill.c" || die "building $pbfill failed (static glibc: libc6-dev)"
	mv "$pbfill.tmp" "$pbfill"
	printf '%-10s %s\n' built "$pbfill"
fi

# --- helpers ----------------------------------------------------------------
report() { # STATE PATH
	printf '%-10s %s\n' "$1" "$2"
}

# uptodate TARGET INPUT...: true when TARGET exists and no INPUT is newer
uptodate() {
	local target=$1 f
	shift
	[[ -e $target ]] || return 1
	for f in "$@"; do
		[[ $f -nt $target ]] && return 1
	done
	return 0
}

# tree_hash DIR: hash of the relative paths and contents of the files in DIR
tree_hash() {
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) |
		sha256sum | cut -d' ' -f1
}

# copy_sources DEST SRCDIR NAME...: copy SRCDIR/NAME... into DEST, leaving out
# build products that an in-tree build may have left behind
copy_sources() {
	local dest=$1 from=$2
	shift 2
	mkdir -p "$dest"
	tar -C "$from" -cf - \
		--exclude='*.o' --exclude='*.ko' --exclude='*.mod' --exclude='*.mod.c' \
		--exclude='.*.cmd' --exclude='*.a' --exclude='.*.d' --exclude='*.dwo' \
		--exclude='Module.symvers' --exclude='modules.order' \
		--exclude='.tmp_versions' --exclude='.cache.mk' --exclude='*.build.log' \
		"$@" | tar -C "$dest" -xf -
}

# build_module KDIR_OUT KVER HDR NAME KO SRCDIR DIR...
#   copy SRCDIR/DIR... to KDIR_OUT/src/, run `make -C src/DIR[0] KDIR=HDR`
#   unless the sources and the headers are unchanged, copy KO to KDIR_OUT/
build_module() {
	local kout=$1 kver=$2 hdr=$3 name=$4 ko=$5 from=$6
	shift 6
	local dirs=("$@") src=$kout/src new=$kout/src/.new-$name
	local stamp=$src/.stamp-$name log=$src/$name.build.log hash built d

	rm -rf "$new"
	copy_sources "$new" "$from" "${dirs[@]}"
	hash="$(tree_hash "$new") $kver $(stat -c %Y "$hdr/Makefile" "$hdr/Module.symvers" 2>/dev/null | tr '\n' ' ')"
	if [[ -f $kout/$ko && -f $stamp && "$(cat "$stamp")" == "$hash" ]]; then
		rm -rf "$new"
		report "unchanged" "$kout/$ko"
		return 0
	fi
	for d in "${dirs[@]}"; do
		rm -rf "${src:?}/$d"
		mv "$new/$d" "$src/$d"
	done
	rm -rf "$new" "$stamp"
	if ! make -C "$src/${dirs[0]}" KDIR="$hdr" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		die "building $name for $kver failed (full log: $log)"
	fi
	built=$(find "$src/${dirs[0]}" -name "$ko" -type f -newer "$src/${dirs[0]}" -print -quit)
	[[ -n $built ]] || built=$(find "$src/${dirs[0]}" -name "$ko" -type f -print -quit)
	[[ -n $built ]] || die "building $name for $kver produced no $ko (log: $log)"
	cp "$built" "$kout/$ko.tmp"
	mv "$kout/$ko.tmp" "$kout/$ko"
	echo "$hash" >"$stamp"
	report "built" "$kout/$ko"
}

# decompress_ko SRC DEST: copy a (possibly compressed) kernel module
decompress_ko() {
	case "$1" in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko.zst) zstd -q -dc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*) cp "$1" "$2" ;;
	esac
}

# Distro modules the normal guest loads, in this order.
distro_modules=(qemu_fw_cfg pvpanic pvpanic-mmio pvpanic-pci)

# module_files KVER NAME: the module's file and its dependencies from
# modules.dep, in load order (dependencies first); empty if NAME is not a module
module_files() {
	local kver=$1 name=$2 line mod deps i
	line=$(grep -E "(^|/)${name}\.ko(\.[a-z]+)?:" "/lib/modules/$kver/modules.dep" | head -n1) || return 0
	mod=${line%%:*}
	read -r -a deps <<<"${line#*:}"
	# modules.dep lists a module's dependencies so that modprobe loads them
	# from the last to the first
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		echo "${deps[i]}"
	done
	echo "$mod"
}

# make_cpio STAGE TARGET
make_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2.tmp"
	mv "$2.tmp" "$2"
}

# stage_base STAGE INIT: busybox root with INIT as /init
stage_base() {
	local stage=$1
	rm -rf "$stage"
	mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,boot,lib/panicbroker,lib/pbtest}
	cp "$busybox" "$stage/bin/busybox"
	ln -s busybox "$stage/bin/sh"
	install -m 0755 "$pbreport" "$stage/bin/pbreport"
	install -m 0755 "$2" "$stage/init"
	# the kernel opens /dev/console for init before devtmpfs is mounted
	mknod -m 0600 "$stage/dev/console" c 5 1 2>/dev/null || true
}

# stage_binary STAGE BIN: copy a dynamically linked binary and its libraries
stage_binary() {
	local stage=$1 bin=$2 lib
	mkdir -p "$stage/$(dirname "$bin")"
	cp -L "$bin" "$stage/$bin"
	for lib in $(ldd "$bin" | grep -oE '/[^ ]+'); do
		[[ -e $lib ]] || continue
		mkdir -p "$stage/$(dirname "$lib")"
		cp -L "$lib" "$stage/$lib"
	done
}

# --- kernel discovery -------------------------------------------------------
# series_match SERIES KVER: KVER belongs to SERIES (6.1 matches 6.1.0-56-amd64,
# not 6.12.117+deb12-amd64)
series_match() {
	[[ $2 == "$1" || $2 == "$1".* || $2 == "$1"-* || $2 == "$1"+* ]]
}

# missing_piece KVER: print what KVER lacks (nothing if complete)
missing_piece() {
	local kver=$1 m=()
	[[ -f /boot/vmlinuz-$kver ]] || m+=("/boot/vmlinuz-$kver")
	[[ -d /lib/modules/$kver/kernel ]] || m+=("/lib/modules/$kver/kernel")
	[[ -f /lib/modules/$kver/modules.dep ]] || m+=("/lib/modules/$kver/modules.dep")
	[[ -f /usr/src/linux-headers-$kver/Makefile ]] || m+=("/usr/src/linux-headers-$kver")
	((${#m[@]} == 0)) || echo "${m[*]}"
}

# pick_kernel SERIES: newest complete kernel of SERIES; prefers the generic
# flavour over -cloud-/-rt- ones
pick_kernel() {
	local s=$1 k all=() good=() plain=() why=""
	for k in /boot/vmlinuz-* /lib/modules/* /usr/src/linux-headers-*; do
		[[ -e $k ]] || continue
		k=${k##*/}
		k=${k#vmlinuz-}
		k=${k#linux-headers-}
		[[ $k == *-common ]] && continue
		series_match "$s" "$k" && all+=("$k")
	done
	if ((${#all[@]} == 0)); then
		echo "build-guests: error: no kernel of series $s is installed" \
			"(need /boot/vmlinuz-$s*, /lib/modules/$s*/kernel and" \
			"/usr/src/linux-headers-$s*): run scripts/install-deps.sh" >&2
		return 1
	fi
	mapfile -t all < <(printf '%s\n' "${all[@]}" | sort -u -V)
	for k in "${all[@]}"; do
		local miss
		miss=$(missing_piece "$k")
		if [[ -n $miss ]]; then
			why+="  $k: missing $miss"$'\n'
		else
			good+=("$k")
			[[ $k == *-cloud-* || $k == *-rt-* ]] || plain+=("$k")
		fi
	done
	if ((${#good[@]} == 0)); then
		printf 'build-guests: error: no complete kernel of series %s:\n%s' "$s" "$why" >&2
		echo "  run scripts/install-deps.sh (it installs image, modules and headers)" >&2
		return 1
	fi
	((${#plain[@]})) && good=("${plain[@]}")
	echo "${good[-1]}"
}

# --- per kernel -------------------------------------------------------------
build_kernel() {
	local s=$1 kver kout hdr stage f name files=() mods=() dep_lines=""
	kver=$(pick_kernel "$s") || exit 1
	kout=$out/$kver
	hdr=/usr/src/linux-headers-$kver
	mkdir -p "$kout/src"
	echo "build-guests: series $s -> $kver"

	# kernel image (/boot's copy is 0600)
	if uptodate "$kout/vmlinuz" "/boot/vmlinuz-$kver"; then
		report "unchanged" "$kout/vmlinuz"
	else
		cp "/boot/vmlinuz-$kver" "$kout/vmlinuz.tmp"
		chmod 0644 "$kout/vmlinuz.tmp"
		mv "$kout/vmlinuz.tmp" "$kout/vmlinuz"
		report "built" "$kout/vmlinuz"
	fi

	# modules
	if ((with_module)); then
		[[ -d $src_top/guest-driver && -d $src_top/include ]] ||
			die "$src_top has no guest-driver/ and include/ (use --src DIR or --no-module)"
		[[ -f $src_top/guest-driver/Makefile ]] ||
			die "$src_top/guest-driver/Makefile does not exist yet (use --src DIR with a driver, or --no-module)"
		build_module "$kout" "$kver" "$hdr" panicbroker panicbroker.ko "$src_top" guest-driver include protocol
	else
		rm -f "$kout/panicbroker.ko" "$kout/src/.stamp-panicbroker"
		report "skipped" "$kout/panicbroker.ko (--no-module)"
	fi
	build_module "$kout" "$kver" "$hdr" pbtest_oops pbtest_oops.ko "$here" pbtest-oops

	# distro modules the normal init loads
	for name in "${distro_modules[@]}"; do
		mapfile -t files < <(module_files "$kver" "$name")
		if ((${#files[@]} == 0)); then
			if grep -qE "(^|/)${name}\.ko" "/lib/modules/$kver/modules.builtin" 2>/dev/null; then
				dep_lines+="$name:"$'\n'
			else
				echo "build-guests: warning: $kver has no module $name" >&2
			fi
			continue
		fi
		local line="$name:"
		for f in "${files[@]}"; do
			mods+=("/lib/modules/$kver/$f")
			f=${f##*/}
			line+=" ${f%.ko*}.ko"
		done
		dep_lines+="$line"$'\n'
	done

	local pb_ko=()
	[[ -f $kout/panicbroker.ko ]] && pb_ko=("$kout/panicbroker.ko")

	# crash kernel initramfs
	if uptodate "$kout/kdump.img" "$here/kdump-init" "${BASH_SOURCE[0]}" "$busybox" "$pbreport" \
		"${pb_ko[@]}" &&
		[[ ${#pb_ko[@]} -gt 0 || ! -e $kout/.kdump-has-module ]]; then
		report "unchanged" "$kout/kdump.img"
	else
		stage=$kout/.stage-kdump
		stage_base "$stage" "$here/kdump-init"
		rm -f "$kout/.kdump-has-module"
		if ((${#pb_ko[@]})); then
			cp "${pb_ko[0]}" "$stage/lib/panicbroker/panicbroker.ko"
			touch "$kout/.kdump-has-module"
		fi
		make_cpio "$stage" "$kout/kdump.img"
		rm -rf "$stage"
		report "built" "$kout/kdump.img"
	fi

	# normal initramfs
	local kexec_libs
	mapfile -t kexec_libs < <(ldd "$kexec" | grep -oE '/[^ ]+' | while read -r f; do [[ -e $f ]] && readlink -f "$f"; done)
	if uptodate "$kout/initrd.img" "$here/init" "${BASH_SOURCE[0]}" "$busybox" "$pbreport" "$pbfill" "$kexec" \
		"${kexec_libs[@]}" "${mods[@]}" "$kout/vmlinuz" "$kout/kdump.img" \
		"$kout/pbtest_oops.ko" "${pb_ko[@]}" &&
		[[ ${#pb_ko[@]} -gt 0 || ! -e $kout/.initrd-has-module ]]; then
		report "unchanged" "$kout/initrd.img"
	else
		stage=$kout/.stage-initrd
		stage_base "$stage" "$here/init"
		stage_binary "$stage" "$kexec"
		install -m 0755 "$pbfill" "$stage/bin/pbfill"
		cp "$kout/vmlinuz" "$stage/boot/vmlinuz"
		cp "$kout/kdump.img" "$stage/boot/kdump.img"
		cp "$kout/pbtest_oops.ko" "$stage/lib/pbtest/pbtest_oops.ko"
		rm -f "$kout/.initrd-has-module"
		if ((${#pb_ko[@]})); then
			cp "${pb_ko[0]}" "$stage/lib/panicbroker/panicbroker.ko"
			touch "$kout/.initrd-has-module"
		fi
		mkdir -p "$stage/lib/pbtest/modules"
		for f in "${mods[@]}"; do
			name=${f##*/}
			decompress_ko "$f" "$stage/lib/pbtest/modules/${name%.ko*}.ko"
		done
		printf '%s' "$dep_lines" >"$stage/lib/pbtest/modules.dep"
		make_cpio "$stage" "$kout/initrd.img"
		rm -rf "$stage"
		report "built" "$kout/initrd.img"
	fi

	if [[ "$(cat "$kout/kver" 2>/dev/null)" == "$kver" ]]; then
		report "unchanged" "$kout/kver"
	else
		echo "$kver" >"$kout/kver"
		report "built" "$kout/kver"
	fi
	if [[ $s != "$kver" ]]; then
		ln -sfn "$kver" "$out/$s"
		report "link" "$out/$s -> $kver"
	fi
}

for s in "${series[@]}"; do
	build_kernel "$s"
done
