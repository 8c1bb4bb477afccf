# Sourced by scripts/bench: the stream lab's payload, made once and kept under .bench/stream/.

# stream_payload: DIR/payload/ holding two 2-minute H.264 videos (index first and index last),
# 128 MiB of seeded random bytes and a folder of small files, plus one torrent of it per piece
# size. Everything is deterministic, so a rerun reuses what is there.
stream_payload() {
	local dir=$BENCH/stream
	local p=$dir/payload
	mkdir -p "$p/small"
	random_file "$BENCH/random-128m.bin" 128
	[ -f "$p/random-128m.bin" ] || ln "$BENCH/random-128m.bin" "$p/random-128m.bin"
	if [ ! -f "$p/video-tailindex.mp4" ]; then
		echo "encoding the 2-minute test video (once)" >&2
		# bitexact flags keep encoder version strings out, so the bytes (and the info-hash)
		# only change with x264 itself; a 2 s GOP lets a player seek anywhere cheaply.
		ffmpeg -nostdin -hide_banner -loglevel error -y \
			-f lavfi -i testsrc2=size=1280x720:rate=30:duration=120 \
			-f lavfi -i sine=frequency=440:sample_rate=48000:duration=120 \
			-c:v libx264 -preset veryfast -b:v 4M -maxrate 4M -bufsize 8M -g 60 -pix_fmt yuv420p \
			-c:a aac -b:a 128k -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
			-map_metadata -1 "$p/video-tailindex.tmp.mp4"
		mv "$p/video-tailindex.tmp.mp4" "$p/video-tailindex.mp4"
	fi
	if [ ! -f "$p/video-faststart.mp4" ]; then
		ffmpeg -nostdin -hide_banner -loglevel error -y -i "$p/video-tailindex.mp4" -c copy \
			-movflags +faststart -fflags +bitexact -map_metadata -1 "$p/video-faststart.tmp.mp4"
		mv "$p/video-faststart.tmp.mp4" "$p/video-faststart.mp4"
	fi
	if [ ! -f "$dir/small.done" ]; then
		# 200 files of 1-64 KiB, cut from the random file at fixed offsets.
		local i f
		for i in $(seq 0 199); do
			f=$p/small/$(printf 'f%03d.bin' "$i")
			dd if="$BENCH/random-128m.bin" of="$f" bs=64K skip="$i" count=1 status=none
			truncate -s $((1024 + (i * 7919) % 64512)) "$f"
		done
		touch "$dir/small.done"
	fi
	local piece
	for piece in 256K 4M; do
		[ -f "$dir/payload-$piece.torrent" ] && continue
		"$BENCH/torrentfs" create -f --no-date --piece-size "$piece" -t "$STREAM_TRACKER" \
			-o "$dir/payload-$piece.torrent" "$p" >/dev/null
	done
	# BEP 52 hybrid, for reads released block by block (used with v2-capable seeders).
	[ -f "$dir/payload-4M-hybrid.torrent" ] || "$BENCH/torrentfs" create -f --no-date --hybrid --piece-size 4M \
		-t "$STREAM_TRACKER" -o "$dir/payload-4M-hybrid.torrent" "$p" >/dev/null
}

# stream_long_payload: the WAN lab's long copy (step longcopy): DIR/long/long/random-1024m.bin,
# 1 GiB of the same seeded bytes, and its torrent of 256 KiB pieces, made once.
stream_long_payload() {
	local dir=$BENCH/stream
	random_file "$BENCH/random-1024m.bin" 1024
	mkdir -p "$dir/long/long"
	[ -f "$dir/long/long/random-1024m.bin" ] || ln "$BENCH/random-1024m.bin" "$dir/long/long/random-1024m.bin"
	[ -f "$dir/payload-long.torrent" ] || "$BENCH/torrentfs" create -f --no-date --piece-size 256K \
		-t "$STREAM_TRACKER" -o "$dir/payload-long.torrent" "$dir/long/long" >/dev/null
}
