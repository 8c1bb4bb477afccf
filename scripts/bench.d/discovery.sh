# Sourced by scripts/bench: trackerless discovery, a bare magnet through a DHT of 16 nodes.

# bench_discovery [benchtool flags]: see internal/benchtool/discovery.go. The DHT's nodes
# live in network namespaces on a bridge inside the jail (10.x addresses): nothing leaves it.
bench_discovery() {
	need_debs aria2:aria2c transmission-cli:transmission-cli fuse3:fusermount3 iproute2:ip
	build_torrentfs
	build_benchtool
	local dir=$BENCH/discovery
	mkdir -p "$dir"
	trap 'discovery_unmount' EXIT
	echo "discovery: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
	jail "$BENCH/benchtool" discovery --torrentfs "$BENCH/torrentfs" --work "$dir" \
		--results "$BENCH/results.jsonl" "$@"
}

discovery_unmount() {
	if grep -q " $(pwd)/$BENCH/discovery/mnt " /proc/mounts; then
		fusermount3 -u -z "$(pwd)/$BENCH/discovery/mnt" || true
	fi
}
