package main

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"torrentfs/metainfo"
)

// sampleTorrent creates a multi-file torrent with every optional field set and returns its
// path and parsed form.
func sampleTorrent(t *testing.T) (string, *metainfo.MetaInfo) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "album")
	writeTree(t, root, map[string]int{"cd1/01 intro.flac": 50_000, "cd1/02.flac": 20_000, "cover.jpg": 999, "empty": 0})
	m, data, err := metainfo.Create(context.Background(), root, metainfo.CreateOptions{
		Announce:     [][]string{{"http://t1/announce"}, {"udp://t2:6969", "http://t3/a"}},
		PieceLength:  16 << 10,
		Private:      true,
		Comment:      "two\nlines",
		WebSeeds:     []string{"http://ws/"},
		CreationDate: time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "album.torrent")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, m
}

func TestInfoJSON(t *testing.T) {
	path, m := sampleTorrent(t)
	stdout, stderr, code := runCmd(t, "info", "--json", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	want := map[string]any{
		"name":          "album",
		"version":       "v1",
		"infohash":      m.InfoHash.HexString(),
		"length":        70_999.0,
		"piece_length":  16384.0,
		"pieces":        5.0,
		"private":       true,
		"comment":       "two\nlines",
		"created_by":    "torrentfs",
		"creation_date": float64(time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC).Unix()),
		"files": []any{
			map[string]any{"path": "album/cd1/01 intro.flac", "length": 50_000.0},
			map[string]any{"path": "album/cd1/02.flac", "length": 20_000.0},
			map[string]any{"path": "album/cover.jpg", "length": 999.0},
			map[string]any{"path": "album/empty", "length": 0.0},
		},
		"trackers":  []any{[]any{"http://t1/announce"}, []any{"udp://t2:6969", "http://t3/a"}},
		"web_seeds": []any{"http://ws/"},
		"magnet":    m.Magnet().String(),
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %q", k)
		}
	}
	if strings.ToLower(m.InfoHash.HexString()) != got["infohash"] {
		t.Error("infohash is not lower-case hex")
	}
	mg, err := metainfo.ParseMagnet(got["magnet"].(string))
	if err != nil || mg.InfoHash != m.InfoHash || mg.DisplayName != "album" || len(mg.Trackers) != 3 {
		t.Errorf("magnet %q parses to %+v, %v", got["magnet"], mg, err)
	}
}

func TestInfoText(t *testing.T) {
	path, m := sampleTorrent(t)
	stdout, stderr, code := runCmd(t, "info", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"name:        album\n",
		"info-hash:   " + m.InfoHash.HexString() + "\n",
		"size:        69.3 KiB (70999 bytes)\n",
		"pieces:      5 x 16.0 KiB (16384 bytes)\n",
		"private:     yes\n",
		"comment:     two lines\n",
		"created by:  torrentfs\n",
		"created:     2026-11-24 10:30:00 UTC\n",
		"magnet:      " + m.Magnet().String() + "\n",
		"files (4):\n",
		"48.8 KiB  album/cd1/01 intro.flac\n",
		"     0 B  album/empty\n",
		"tier 1: http://t1/announce\n",
		"tier 2: udp://t2:6969 http://t3/a\n",
		"web seeds:\n  http://ws/\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// Pad files (BEP 47) are in the torrent's byte stream but never shown.
func TestInfoHidesPadFiles(t *testing.T) {
	type file struct {
		Attr   string   `bencode:"attr,omitempty"`
		Length int64    `bencode:"length"`
		Path   []string `bencode:"path"`
	}
	info := map[string]any{
		"name":         "padded",
		"piece length": 16384,
		"pieces":       strings.Repeat("x", 2*sha1.Size),
		"files": []file{
			{Length: 100, Path: []string{"a"}},
			{Attr: "p", Length: 16284, Path: []string{".pad", "16284"}},
			{Length: 50, Path: []string{"b"}},
		},
	}
	data, err := bencode.Marshal(map[string]any{"info": info})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.torrent")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := runCmd(t, "info", "--json", path)
	var got struct{ Files []fileJSON }
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s", code, err, stdout)
	}
	if want := []fileJSON{{"padded/a", 100}, {"padded/b", 50}}; !reflect.DeepEqual(got.Files, want) {
		t.Errorf("files %v, want %v", got.Files, want)
	}
	stdout, _, _ = runCmd(t, "info", path)
	if strings.Contains(stdout, ".pad") || !strings.Contains(stdout, "files (2):") {
		t.Errorf("text output shows the pad file:\n%s", stdout)
	}
}

func TestInfoMagnet(t *testing.T) {
	const hash = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"
	link := "magnet:?xt=urn:btih:" + strings.ToUpper(hash) + "&dn=Some+Name&tr=http%3A%2F%2Ft%2Fa&tr=udp%3A%2F%2Fu%3A1" +
		"&x.pe=127.0.0.1%3A6881&ws=http%3A%2F%2Fw%2F"
	stdout, stderr, code := runCmd(t, "info", "--json", link)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got magnetJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	want := magnetJSON{
		InfoHash: hash,
		Name:     "Some Name",
		Trackers: [][]string{{"http://t/a"}, {"udp://u:1"}},
		Peers:    []string{"127.0.0.1:6881"},
		WebSeeds: []string{"http://w/"},
		Magnet: "magnet:?xt=urn:btih:" + hash + "&dn=Some+Name&tr=http%3A%2F%2Ft%2Fa&tr=udp%3A%2F%2Fu%3A1" +
			"&x.pe=127.0.0.1%3A6881&ws=http%3A%2F%2Fw%2F",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	stdout, _, code = runCmd(t, "info", link)
	for _, s := range []string{"info-hash:  " + hash, "name:       Some Name", "tier 2: udp://u:1", "peers:\n  127.0.0.1:6881", "web seeds:\n  http://w/"} {
		if code != 0 || !strings.Contains(stdout, s) {
			t.Errorf("exit %d; output lacks %q:\n%s", code, s, stdout)
		}
	}

	// A bare link: empty lists, not nulls.
	stdout, _, _ = runCmd(t, "info", "--json", "magnet:?xt=urn:btih:"+hash)
	if !strings.Contains(stdout, `"trackers": []`) || !strings.Contains(stdout, `"peers": []`) || strings.Contains(stdout, "null") {
		t.Errorf("bare magnet JSON:\n%s", stdout)
	}
}

func TestInfoExitCodes(t *testing.T) {
	good, _ := sampleTorrent(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.torrent")
	if err := os.WriteFile(broken, []byte("d4:infod4:name1:xee"), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.torrent")
	if err := os.WriteFile(garbage, []byte("not a torrent at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"info", "--help"}, 0, "usage: torrentfs info"},
		{"-h", []string{"info", "-h"}, 0, "-json"},
		{"help command", []string{"help", "info"}, 0, "FILE|MAGNET"},
		{"no argument", []string{"info"}, 2, "want exactly one"},
		{"two arguments", []string{"info", good, good}, 2, "want exactly one"},
		{"unknown flag", []string{"info", "--xml", good}, 2, "xml"},
		{"missing file", []string{"info", filepath.Join(dir, "nope.torrent")}, 1, "no such file"},
		{"broken torrent", []string{"info", broken}, 1, "invalid torrent"},
		{"not a torrent", []string{"info", garbage}, 1, "invalid torrent"},
		{"bad magnet", []string{"info", "magnet:?xt=urn:btih:1234"}, 1, "invalid magnet"},
		{"ok", []string{"info", good}, 0, "info-hash:"},
		{"ok, flag after file", []string{"info", good, "--json"}, 0, `"infohash"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("exit %d, want %d; output lacks %q?\nstdout: %s\nstderr: %s", code, tt.code, tt.want, stdout, stderr)
			}
		})
	}
}
