# Sourced by scripts/bench: the idle cost of a library mount (issue: 100 torrents in one
# mount under 100 MiB RSS and 1% CPU once nothing is read or fetched).

# bench_library [N]: N (default 100) small torrents seeded by one `torrentfs seed`, all
# mounted at once; once every one is complete, the mount's RSS and CPU share over 30 s,
# and how long `ls` of the root and `torrentfs ls` take.
bench_library() {
	need_debs fuse3:fusermount3 time:/usr/bin/time
	build_torrentfs
	local n=${1:-100} dir=$BENCH/library
	rm -rf "$dir"
	mkdir -p "$dir/data" "$dir/torrents" "$dir/mnt" "$dir/cache"
	for i in $(seq -w 1 "$n"); do
		head -c $((256 * 1024 + 10#$i * 1000)) /dev/zero | tr '\0' "$((10#$i % 10))" >"$dir/data/t$i.bin"
		"$BENCH/torrentfs" create --piece-size 64K -o "$dir/torrents/t$i.torrent" "$dir/data/t$i.bin" >/dev/null 2>&1
	done
	echo "library: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), $n torrents of ~300 KiB"
	jail bash -c '
		set -euo pipefail
		tfs=$1 dir=$2
		common="--no-dht --no-lsd --no-port-map --no-trackers"
		"$tfs" seed $common --listen 127.0.0.1:0 --data "$dir/data" "$dir"/torrents/*.torrent >"$dir/seed.out" 2>"$dir/seed.log" &
		seed=$!
		trap "kill \$seed \${mount:-} 2>/dev/null; fusermount3 -u -z \"$dir/mnt\" 2>/dev/null || true" EXIT
		for _ in $(seq 300); do [ "$(grep -c seeding "$dir/seed.out" 2>/dev/null)" -ge "$(ls "$dir/torrents" | wc -l)" ] && break; sleep 0.1; done
		port=$(sed -n "s/.*on port \([0-9]*\).*/\1/p" "$dir/seed.out" | head -n 1)
		start=$(date +%s.%N)
		"$tfs" mount $common --listen 127.0.0.1:0 --cache-dir "$dir/cache" --peer "127.0.0.1:$port" "$dir"/torrents/*.torrent "$dir/mnt" >"$dir/mount.out" 2>"$dir/mount.log" &
		mount=$!
		for _ in $(seq 300); do grep -q mounted "$dir/mount.out" 2>/dev/null && break; sleep 0.1; done
		printf "  mounted in %.2f s\n" "$(echo "$(date +%s.%N) - $start" | bc)"
		for _ in $(seq 600); do
			left=$("$tfs" ls --json "$dir/mnt" | grep -c "\"progress\": [0-9.]*[^1]," || true)
			[ "$left" -eq 0 ] && break
			sleep 0.2
		done
		printf "  all complete in %.2f s\n" "$(echo "$(date +%s.%N) - $start" | bc)"
		sleep 15 # past the writes and messages that follow completion
		t0=$(date +%s.%N)
		ls "$dir/mnt" >/dev/null
		t1=$(date +%s.%N)
		"$tfs" ls "$dir/mnt" >/dev/null
		t2=$(date +%s.%N)
		printf "  ls of the root %.1f ms, torrentfs ls %.1f ms\n" "$(echo "($t1 - $t0) * 1000" | bc)" "$(echo "($t2 - $t1) * 1000" | bc)"
		hz=$(getconf CLK_TCK)
		cpu() { awk "{ print \$14 + \$15 }" "/proc/$mount/stat"; }
		c0=$(cpu)
		sleep 30
		c1=$(cpu)
		rss=$(awk "/VmRSS/ { print \$2 }" "/proc/$mount/status")
		printf "  idle: RSS %d MiB, CPU %.2f%% of one core over 30 s, %d threads\n" "$((rss / 1024))" \
			"$(echo "($c1 - $c0) * 100 / ($hz * 30)" | bc -l)" "$(ls /proc/$mount/task | wc -l)"
	' bench "$(pwd)/$BENCH/torrentfs" "$(pwd)/$dir"
}
