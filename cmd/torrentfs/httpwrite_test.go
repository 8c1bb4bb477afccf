package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

const writeToken = "tok-7f3a9c1e55d2"

// apiDo sends a request to a torrentfs HTTP server, with the token when auth is set, and
// returns the status and body.
func apiDo(t *testing.T, method, url string, body []byte, contentType string, auth bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+writeToken)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// apiNames is the names /api/torrents lists, joined with commas.
func apiNames(t *testing.T, base string) string {
	t.Helper()
	var ts []struct{ Name string }
	if err := json.Unmarshal(curl(t, base+"/api/torrents"), &ts); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ts {
		names = append(names, x.Name)
	}
	return strings.Join(names, ",")
}

// addOverHTTP posts a .torrent with the token and checks the answer names it.
func addOverHTTP(t *testing.T, base, torrent string) {
	t.Helper()
	b, err := os.ReadFile(torrent)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := metainfo.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	code, body := apiDo(t, "POST", base+"/api/torrents", b, "application/x-bittorrent", true)
	var got struct{ Name, InfoHash string }
	if code != 201 || json.Unmarshal([]byte(body), &got) != nil || got.Name != mi.Info.Name || got.InfoHash != mi.InfoHash.HexString() {
		t.Fatalf("POST /api/torrents: %d %s", code, body)
	}
}

// serve with a token starts with no torrent; one is added over HTTP, streamed, refused a
// second time, and removed with its cache; without the token nothing changes.
func TestServeHTTPAddRemove(t *testing.T) {
	testutil.Need(t, "curl")
	torrent, data, content := fixture(t, "pack", tfile{"a.bin", 700_000}, tfile{"b.txt", 3_000})
	mi, err := metainfo.Load(torrent)
	if err != nil {
		t.Fatal(err)
	}
	peer := seeder(t, torrent, data)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(writeToken+"\nsecond line ignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	p := testutil.Start(t, torrentfsBin(t), "serve", "--http", "127.0.0.1:0", "--http-token-file", tokenFile,
		"--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", "127.0.0.1:0", "--peer", peer, "--cache-dir", cacheDir)
	stopOnCleanup(t, p)
	base := waitHTTP(t, p)
	if got := apiNames(t, base); got != "" {
		t.Fatalf("torrents at the start: %q", got)
	}
	b, _ := os.ReadFile(torrent)
	if code, body := apiDo(t, "POST", base+"/api/torrents", b, "application/x-bittorrent", false); code != 401 {
		t.Fatalf("POST without the token: %d %s", code, body)
	}
	addOverHTTP(t, base, torrent)
	if code, body := apiDo(t, "POST", base+"/api/torrents", b, "application/x-bittorrent", true); code != 409 || !strings.Contains(body, "already in the library") {
		t.Errorf("POST of the same torrent: %d %s", code, body)
	}
	if code, body := apiDo(t, "POST", base+"/api/torrents", b[:len(b)-10], "application/x-bittorrent", true); code != 400 {
		t.Errorf("POST of a cut torrent: %d %s", code, body)
	}
	// The torrent shows once its cache is checked and it runs; its files stream.
	testutil.WaitFor(t, 20*time.Second, "the added torrent in /api/torrents", func() bool { return apiNames(t, base) == "pack" })
	url := base + "/stream/" + mi.InfoHash.HexString() + "/pack/a.bin"
	if got := curl(t, url); !bytes.Equal(got, content[filepath.Join("pack", "a.bin")]) {
		t.Fatalf("stream of the added torrent: %d bytes differ", len(got))
	}
	if got := curl(t, "-r", "100-199", url); !bytes.Equal(got, content[filepath.Join("pack", "a.bin")][100:200]) {
		t.Errorf("range of the added torrent differs")
	}
	cache := filepath.Join(cacheDir, mi.InfoHash.HexString())
	if _, err := os.Stat(cache); err != nil {
		t.Fatalf("no cache: %v", err)
	}

	// Removing: not without the token, then by info-hash with the cache.
	del := base + "/api/torrents/" + mi.InfoHash.HexString() + "?delete=1"
	if code, _ := apiDo(t, "DELETE", del, nil, "", false); code != 401 {
		t.Errorf("DELETE without the token: %d", code)
	}
	if code, body := apiDo(t, "DELETE", del, nil, "", true); code != 204 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if code, _ := apiDo(t, "GET", url, nil, "", false); code != 404 {
		t.Errorf("stream of a removed torrent: %d, want 404", code)
	}
	if got := apiNames(t, base); got != "" {
		t.Errorf("torrents after DELETE: %q", got)
	}
	if _, err := os.Stat(cache); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cache after DELETE ?delete=1: %v", err)
	}
	if code, body := apiDo(t, "DELETE", del, nil, "", true); code != 404 || !strings.Contains(body, "no torrent named") {
		t.Errorf("DELETE again: %d %s", code, body)
	}
	if strings.Contains(p.Stderr(), writeToken) {
		t.Error("the token is in the log")
	}
}

// A mount with --http and a token: a torrent added over HTTP shows in the mount too, and
// goes from it when removed by name.
func TestMountHTTPAddRemove(t *testing.T) {
	testutil.NeedFUSE(t)
	first, data1, _ := fixture(t, "first", tfile{"", 300_000})
	second, data2, content := fixture(t, "second", tfile{"x.bin", 500_000})
	if err := os.Rename(filepath.Join(data2, "second"), filepath.Join(data1, "second")); err != nil {
		t.Fatal(err)
	}
	peer := startSeed(t, "127.0.0.1", data1, nil, first, second)
	mnt := filepath.Join(t.TempDir(), "m")
	p := mountAt(t, first, mnt, "--peer", peer, "--cache-dir", t.TempDir(), "--http", "127.0.0.1:0", "--http-token", writeToken)
	base := waitHTTP(t, p)
	addOverHTTP(t, base, second)
	testutil.WaitFor(t, 20*time.Second, "second's file in the mount", func() bool {
		return exec.Command("test", "-f", filepath.Join(mnt, "second", "x.bin")).Run() == nil
	})
	if got := sh(t, "cat '"+filepath.Join(mnt, "second", "x.bin")+"'"); got != string(content[filepath.Join("second", "x.bin")]) {
		t.Fatalf("the added torrent's file in the mount differs")
	}
	if code, body := apiDo(t, "DELETE", base+"/api/torrents/second", nil, "", true); code != 204 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if got := rootNames(t, mnt); got != "first" {
		t.Errorf("mount after DELETE: %s", got)
	}
}

// The token flags: one of them, read from a file's first line, never both; a mount's
// needs --http.
func TestHTTPTokenFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(good, []byte("  abc \r\nrest"), 0o600)
	os.WriteFile(empty, []byte("\nabc\n"), 0o600)
	for _, tc := range []struct {
		tf   tokenFlags
		want string
		err  string
	}{
		{tokenFlags{}, "", ""},
		{tokenFlags{token: "x"}, "x", ""},
		{tokenFlags{file: good}, "abc", ""},
		{tokenFlags{file: empty}, "", "first line is empty"},
		{tokenFlags{file: filepath.Join(dir, "none")}, "", "no such file"},
		{tokenFlags{token: "x", file: good}, "", "not both"},
	} {
		got, err := tc.tf.get()
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %q, %v; want %q, %q", tc.tf, got, err, tc.want, tc.err)
		}
	}
	out, err := exec.Command(torrentfsBin(t), "mount", "--http-token", "x", "a.torrent", dir).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "--http-token needs --http") {
		t.Errorf("mount --http-token without --http: %v, %s", err, out)
	}
}
