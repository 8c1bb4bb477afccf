# Sourced by scripts/bench: download throughput, torrentfs get vs aria2c.

# bench_get: a 1 GiB file in 1 MiB pieces, our tracker, four unthrottled aria2c seeders on
# 127.0.0.11-14; torrentfs get and aria2c download it in turn (A B B A per round) into fresh
# directories. benchtool prints the table and appends JSON lines to .bench/results.jsonl.
bench_get() {
	need_debs aria2:aria2c openssl:openssl fuse3:fusermount3
	build_torrentfs
	build_benchtool
	local dir=$BENCH/get
	mkdir -p "$dir/data"
	random_file "$BENCH/random-1g.bin" 1024
	[ -f "$dir/data/random-1g.bin" ] || ln "$BENCH/random-1g.bin" "$dir/data/random-1g.bin"
	if [ ! -f "$dir/random-1g.torrent" ]; then
		"$BENCH/torrentfs" create -f --no-date --piece-size 1M -t http://127.0.0.1:6969/announce \
			-o "$dir/random-1g.torrent" "$dir/data/random-1g.bin" >/dev/null
	fi
	echo "get: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
	jail "$BENCH/benchtool" get --torrentfs "$BENCH/torrentfs" --torrent "$dir/random-1g.torrent" \
		--data "$dir/data/random-1g.bin" --work "$dir/run" --rounds "${ROUNDS:-2}" \
		--tracker 127.0.0.1:6969 --results "$BENCH/results.jsonl" "$@"
}
