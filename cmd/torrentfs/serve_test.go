package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// mediaFixture makes a two-file torrent "media": a short MP4 made by ffmpeg (index at the
// end) and 1.5 MB of random bytes; it returns the torrent, its data directory and the
// files' contents by name.
func mediaFixture(t *testing.T) (torrent, data string, content map[string][]byte) {
	t.Helper()
	testutil.Need(t, "ffmpeg", "ffprobe", "curl", "mpv")
	torrent, data, content = fixture(t, "media", tfile{"blob.bin", 1_500_000})
	clip := filepath.Join(data, "media", "clip.mp4")
	gen := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "3",
		"-vf", "noise=alls=40:allf=t", "-c:v", "mpeg4", "-q:v", "6", clip)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v\n%s", err, out)
	}
	b, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	content["clip.mp4"], content["blob.bin"] = b, content[filepath.Join("media", "blob.bin")]
	out, err := exec.Command(torrentfsBin(t), "create", "-f", "-piece-size", "256K", "-o", torrent, filepath.Join(data, "media")).CombinedOutput()
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	return torrent, data, content
}

var httpURL = regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/`)

// waitHTTP waits for a child's line naming its HTTP address and returns the base URL.
func waitHTTP(t *testing.T, p *testutil.Proc) string {
	t.Helper()
	var base string
	testutil.WaitFor(t, 15*time.Second, "the HTTP address on stdout", func() bool {
		if p.Exited() {
			t.Fatalf("%s exited: %v\n%s", p.Name, p.Err(), p.Stderr())
		}
		if m := httpURL.FindStringSubmatch(p.Stdout()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	return base
}

// stopOnCleanup stops a child with SIGTERM at the end of the test and checks it exits.
func stopOnCleanup(t *testing.T, p *testutil.Proc) {
	t.Cleanup(func() {
		if p.Exited() {
			return
		}
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Errorf("%s did not stop on SIGTERM; stderr:\n%s", p.Name, p.Stderr())
		}
	})
}

func curl(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-s", "-f", "--max-time", "30"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// checkStreams reads files and ranges of them over HTTP with curl and a video with ffprobe
// and ffmpeg, comparing with the original bytes and frames.
func checkStreams(t *testing.T, base string, ih metainfo.Hash, content map[string][]byte, clipPath string) {
	t.Helper()
	url := func(name string) string { return base + "/stream/" + ih.HexString() + "/media/" + name }
	blob := content["blob.bin"]
	n := len(blob)
	for _, r := range []struct {
		arg        string
		start, end int
	}{
		{"0-99", 0, 100},
		{"600000-900000", 600000, 900001},
		{"-5000", n - 5000, n},
		{"1400000-", 1400000, n},
		{"262143-262144", 262143, 262145},
	} {
		if got := curl(t, "-r", r.arg, url("blob.bin")); !bytes.Equal(got, blob[r.start:r.end]) {
			t.Errorf("curl -r %s: %d bytes differ from the file's bytes %d-%d", r.arg, len(got), r.start, r.end-1)
		}
	}
	if got := curl(t, url("blob.bin")); !bytes.Equal(got, blob) {
		t.Errorf("whole file: %d bytes differ", len(got))
	}

	probe := testutil.Start(t, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width", "-of", "csv=p=0", url("clip.mp4"))
	if err := probe.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe.Stderr())
	}
	if got := strings.TrimSpace(probe.Stdout()); got != "mpeg4,160" {
		t.Errorf("ffprobe: %q, want mpeg4,160", got)
	}
	decode := func(src string) string {
		t.Helper()
		p := testutil.Start(t, "ffmpeg", "-v", "error", "-i", src, "-f", "md5", "-")
		if err := p.Wait(t, 30*time.Second); err != nil {
			t.Fatalf("decode %s: %v\n%s", src, err, p.Stderr())
		}
		return p.Stdout()
	}
	if got, want := decode(url("clip.mp4")), decode(clipPath); got != want {
		t.Errorf("frames decoded over HTTP %q, from the file %q", got, want)
	}
	// A player: mpv opens the URL, finds the video stream and plays it to the end.
	mpv := testutil.Start(t, "mpv", "--no-config", "--vo=null", "--ao=null", "--length=5",
		"--msg-level=all=error,cplayer=info", "--term-status-msg=", url("clip.mp4"))
	if err := mpv.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("mpv: %v\n%s", err, mpv.Output())
	}
	if out := mpv.Output(); !strings.Contains(out, "160x120") || !strings.Contains(out, "(End of file)") {
		t.Errorf("mpv did not play the video to its end:\n%s", out)
	}

	// The status page, its data and the metrics answer.
	if page := curl(t, base+"/"); !bytes.Contains(page, []byte("/api/torrents")) {
		t.Error("the status page does not poll /api/torrents")
	}
	var ts []struct {
		Name     string `json:"name"`
		InfoHash string `json:"infohash"`
		Files    []struct {
			Path   string `json:"path"`
			Pieces string `json:"pieces"`
		} `json:"files"`
		PeerList []struct {
			Addr      string `json:"addr"`
			Transport string `json:"transport"`
			Seed      bool   `json:"seed"`
		} `json:"peer_list"`
	}
	if err := json.Unmarshal(curl(t, base+"/api/torrents"), &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "media" || ts[0].InfoHash != ih.HexString() || len(ts[0].Files) != 2 {
		t.Fatalf("/api/torrents: %+v", ts)
	}
	// The seeder we downloaded from is listed among the peers, with its transport.
	if pl := ts[0].PeerList; len(pl) == 0 || !pl[0].Seed || pl[0].Transport != "tcp" && pl[0].Transport != "utp" || pl[0].Addr == "" {
		t.Errorf("/api/torrents peer list: %+v", pl)
	}
	metrics := string(curl(t, base+"/metrics"))
	if want := fmt.Sprintf(`torrentfs_pieces{infohash="%s",name="media"}`, ih.HexString()); !strings.Contains(metrics, want) {
		t.Errorf("no %s in the metrics:\n%s", want, metrics)
	}
	if !strings.Contains(metrics, "torrentfs_http_read_wait_seconds_count") {
		t.Error("no read wait histogram in the metrics")
	}
	if pl := string(curl(t, base+"/playlist.m3u")); !strings.Contains(pl, url("clip.mp4")) || strings.Contains(pl, "blob.bin") {
		t.Errorf("playlist:\n%s", pl)
	}
}

func TestServeHTTP(t *testing.T) {
	torrent, data, content := mediaFixture(t)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	peer := seeder(t, torrent, data)
	cacheDir := t.TempDir()
	p := testutil.Start(t, torrentfsBin(t), "serve", "--http", "127.0.0.1:0", "--no-dht", "--no-lsd", "--no-port-map",
		"--no-trackers", "--listen", "127.0.0.1:0", "--peer", peer, "--cache-dir", cacheDir, torrent)
	stopOnCleanup(t, p)
	base := waitHTTP(t, p)
	checkStreams(t, base, mi.InfoHash, content, filepath.Join(data, "media", "clip.mp4"))
	if _, err := os.Stat(filepath.Join(cacheDir, mi.InfoHash.HexString())); err != nil {
		t.Errorf("no cache directory per info-hash: %v", err)
	}
	// An unknown torrent and a path climbing out are not found.
	for _, u := range []string{
		base + "/stream/" + strings.Repeat("0", 40) + "/media/blob.bin",
		base + "/stream/" + mi.InfoHash.HexString() + "/media/../../../etc/passwd",
		base + "/stream/" + mi.InfoHash.HexString() + "/media/%2e%2e/%2e%2e/etc/passwd",
	} {
		code := sh(t, "curl -s --path-as-is -o /dev/null -w '%{http_code}' '"+u+"'")
		if code != "404" {
			t.Errorf("%s: status %s, want 404", u, code)
		}
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(t, 5*time.Second); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, p.Stderr())
	}
}

func TestMountHTTP(t *testing.T) {
	testutil.NeedFUSE(t)
	torrent, data, content := mediaFixture(t)
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	peer := seeder(t, torrent, data)
	mnt := filepath.Join(t.TempDir(), "m")
	p := mountAt(t, torrent, mnt, "--peer", peer, "--cache-dir", t.TempDir(), "--http", "127.0.0.1:0")
	base := waitHTTP(t, p)
	checkStreams(t, base, mi.InfoHash, content, filepath.Join(data, "media", "clip.mp4"))
	// The mount reads the same bytes.
	sh(t, "cmp '"+filepath.Join(mnt, "media", "blob.bin")+"' '"+filepath.Join(data, "media", "blob.bin")+"'")
}
