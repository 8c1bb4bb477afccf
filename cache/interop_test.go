package cache

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"torrentfs/metainfo"
)

// Data laid out by hand and described by a .torrent from mktorrent (what other clients
// produce) is found complete in read-only mode: the layout matches everyone else's.
func TestMktorrentLayout(t *testing.T) {
	if _, err := exec.LookPath("mktorrent"); err != nil {
		t.Skip("mktorrent not installed")
	}
	files := []fileSpec{{"one.bin", 70*kib + 3, false}, {"sub/two.bin", 33 * kib, false}, {"sub/deeper/three", 1, false}}
	_, data := makeTorrent(t, "payload", 16*kib, false, files)
	dir := t.TempDir()
	var off int64
	for _, f := range files {
		p := filepath.Join(dir, "payload", filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data[off:off+f.n], 0o644); err != nil {
			t.Fatal(err)
		}
		off += f.n
	}
	tf := filepath.Join(t.TempDir(), "p.torrent")
	cmd := exec.Command("mktorrent", "-l", "15", "-d", "-o", tf, filepath.Join(dir, "payload"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mktorrent: %v\n%s", err, out)
	}
	mi, err := metainfo.Load(tf)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, &mi.Info, Options{ReadOnly: true})
	have, err := s.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !have.All() {
		t.Fatalf("mktorrent's data found incomplete: %d/%d pieces", have.Count(), mi.Info.NumPieces())
	}
}
