package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// TestMountFFmpegPlaysMP4 decodes a video straight from the mount. The MP4 has its index
// (moov) at the end, so the demuxer reads the head, jumps to the tail and comes back: the
// probe pattern the read heads are built for.
func TestMountFFmpegPlaysMP4(t *testing.T) {
	testutil.NeedFUSE(t)
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o755)
	orig := filepath.Join(data, "clip.mp4")
	// Noise keeps the frames big: a few MiB, many pieces.
	gen := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "6",
		"-vf", "noise=alls=40:allf=t", "-c:v", "mpeg4", "-q:v", "6", orig)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v\n%s", err, out)
	}
	torrent := filepath.Join(dir, "clip.torrent")
	if out, err := exec.Command(torrentfsBin(t), "create", "-piece-size", "256K", "-o", torrent, orig).CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	peer := seeder(t, torrent, data)
	mnt := filepath.Join(t.TempDir(), "m")
	mountAt(t, torrent, mnt, "--peer", peer, "--cache-dir", t.TempDir())

	decode := func(path string) string {
		t.Helper()
		p := testutil.Start(t, "ffmpeg", "-v", "error", "-i", path, "-f", "md5", "-")
		if err := p.Wait(t, 20*time.Second); err != nil {
			t.Fatalf("decode %s: %v\n%s", path, err, p.Stderr())
		}
		return p.Stdout()
	}
	if got, want := decode(filepath.Join(mnt, "clip.mp4", "clip.mp4")), decode(orig); got != want {
		t.Errorf("decoded frames differ: mount %q, original %q", got, want)
	}
}
