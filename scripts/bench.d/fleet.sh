# Sourced by scripts/bench: one image to a fleet of 8 and 16 nodes over WAN-like links.

# bench_fleet [--quick] [benchtool flags]: see internal/benchtool/fleet.go. An origin and N
# nodes, each a network namespace on a bridge inside the jail, every uplink shaped to
# --rate (2 MiB/s) with 20 ms one-way delay; rows torrentfs, aria2c, Transmission, plain
# HTTP (nginx and curl) and ours with a web seed. --quick: a 64 MiB image (else 256 MiB).
bench_fleet() {
	need_debs aria2:aria2c transmission-cli:transmission-cli nginx:nginx curl:curl iproute2:ip
	build_torrentfs
	build_benchtool
	local size=256M args=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--quick) size=64M ;;
		--nodes | --rate | --size | --clients | --rounds | --delay | --piece-size)
			[ $# -ge 2 ] || usage
			if [ "$1" = --size ]; then size=$2; else args+=("$1" "$2"); fi
			shift
			;;
		*) args+=("$1") ;;
		esac
		shift
	done
	local dir=$BENCH/fleet
	mkdir -p "$dir"
	echo "fleet: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), engine $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo +changes)"
	jail "$BENCH/benchtool" fleet --torrentfs "$BENCH/torrentfs" --work "$dir" \
		--results "$BENCH/results.jsonl" --size "$size" "${args[@]}"
}
