# Sourced by scripts/bench: the streaming lab, torrentfs mount vs btfs (and, with --http,
# torrentfs through mount --http beside its FUSE path).

STREAM_TRACKER=http://127.0.0.1:6969/announce

# bench_stream [--quick] [--http] [--wan] [benchtool flags]: see internal/benchtool/stream.go
# for what is measured, and wan.go for --wan (seeders on hosts of their own behind shaped,
# delayed links). Mounts live under .bench/stream/mnt; whatever happens, nothing stays mounted.
bench_stream() {
	need_debs aria2:aria2c btfs:btfs ffmpeg:ffmpeg fuse3:fusermount3 mktorrent:mktorrent qbittorrent-nox:qbittorrent-nox transmission-cli:transmission-cli \
		openssl:openssl opentracker:opentracker iproute2:ip
	build_torrentfs
	build_benchtool
	stream_payload
	local dir=$BENCH/stream
	local long=()
	case " $* " in
	*longcopy*)
		stream_long_payload
		long=(--torrent-long "$dir/payload-long.torrent" --data-long "$dir/long/long")
		;;
	esac
	mkdir -p "$dir/mnt"
	trap 'stream_unmount_all' EXIT
	echo "stream: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ), engine $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!docs' || echo +changes)"
	jail "$BENCH/benchtool" stream --torrentfs "$BENCH/torrentfs" --data "$dir/payload" \
		--torrent256 "$dir/payload-256K.torrent" --torrent4m "$dir/payload-4M.torrent" \
		--torrent4mv2 "$dir/payload-4M-hybrid.torrent" \
		--work "$dir/run" --tracker 127.0.0.1:6969 --results "$BENCH/results.jsonl" "${long[@]}" "$@"
}

# stream_unmount_all detaches any mount benchtool could not take down itself (it was killed).
stream_unmount_all() {
	local m
	for m in $(awk -v d="$(pwd)/$BENCH/stream/" 'index($2, d) == 1 { print $2 }' /proc/mounts); do
		echo "detaching leftover mount $m" >&2
		fusermount3 -u -z "$m" || true
	done
}
