# Sourced by scripts/bench: what serving costs a seeder, torrentfs seed vs aria2c.

# bench_seed [--size 256M] [--peers 8] [--rate R] [--cpuprofile DIR]: one file in 256 KiB
# pieces, one seeder (torrentfs seed, then aria2c; the order alternates by round) serving
# --peers downloaders (torrentfs get on 127.0.0.21-28, each told only of the seeder), inside
# the jail. The figure is the seeder's CPU per GiB uploaded; see internal/benchtool/seed.go.
bench_seed() {
	need_debs aria2:aria2c openssl:openssl
	build_torrentfs
	build_benchtool
	local mib=256 args=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--size)
			[ $# -ge 2 ] || usage
			mib=${2%M}
			shift
			;;
		*) args+=("$1") ;;
		esac
		shift
	done
	local dir=$BENCH/seed name=random-${mib}m.bin
	mkdir -p "$dir/data"
	random_file "$BENCH/$name" "$mib"
	[ -f "$dir/data/$name" ] || ln "$BENCH/$name" "$dir/data/$name"
	if [ ! -f "$dir/random-${mib}m.torrent" ]; then
		"$BENCH/torrentfs" create -f --no-date --piece-size 256K -t http://127.0.0.1:6969/announce \
			-o "$dir/random-${mib}m.torrent" "$dir/data/$name" >/dev/null
	fi
	echo "seed: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), engine $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo +changes)"
	jail "$BENCH/benchtool" seed --torrentfs "$BENCH/torrentfs" --torrent "$dir/random-${mib}m.torrent" \
		--data "$dir/data/$name" --work "$dir/run" --rounds "${ROUNDS:-2}" \
		--tracker 127.0.0.1:6969 --results "$BENCH/results.jsonl" "${args[@]}"
}
