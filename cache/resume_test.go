package cache

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"torrentfs/bitfield"
	"torrentfs/metainfo"
)

func TestResumeFile(t *testing.T) {
	files := []fileSpec{{"a", 100 * kib, false}, {"b", 60*kib + 1, false}}
	for _, tc := range []struct {
		name       string
		tamper     func(t *testing.T, dir, state string)
		wantHashed bool
	}{
		{"untouched", func(*testing.T, string, string) {}, false},
		{"mtime changed", func(t *testing.T, dir, _ string) {
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "r", "b"), future, future); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"file removed", func(t *testing.T, dir, _ string) {
			if err := os.Remove(filepath.Join(dir, "r", "a")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"garbage state", func(t *testing.T, _, state string) {
			if err := os.WriteFile(state, []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"no state", func(t *testing.T, _, state string) {
			if err := os.Remove(state); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, data := makeTorrent(t, "r", 32*kib, false, files)
			dir := t.TempDir()
			state := filepath.Join(t.TempDir(), "r.state")
			s := open(t, dir, info, Options{StateFile: state})
			want := map[int]bool{0: true, 2: true, 5: true}
			have := bitfield.New(info.NumPieces())
			for i := range want {
				writePiece(t, s, data, i, nil)
				verify(t, s, i, true)
				have.Set(i)
			}
			if err := s.SaveState(have, s.StatFiles()); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.tamper(t, dir, state)
			s2 := open(t, dir, info, Options{StateFile: state})
			have2, err := s2.Check(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if hashed := s2.hashed.Load() > 0; hashed != tc.wantHashed {
				t.Errorf("hashed %d pieces; want hashing=%v", s2.hashed.Load(), tc.wantHashed)
			}
			if tc.name == "file removed" {
				want = map[int]bool{5: true} // a is pieces 0-3
			}
			for i := range info.NumPieces() {
				if have2.Has(i) != want[i] {
					t.Errorf("piece %d present=%v, want %v", i, have2.Has(i), want[i])
				}
			}
		})
	}
}

// A piece that changes after the stat but before the have set is taken shows up as an mtime
// mismatch: the resume file is then not trusted.
func TestResumeFileStatBeforeHave(t *testing.T) {
	info, data := makeTorrent(t, "p", 16*kib, true, []fileSpec{{"", 100 * kib, false}})
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state")
	s := open(t, dir, info, Options{StateFile: state})
	writePiece(t, s, data, 0, nil)
	stats := s.StatFiles()
	writePiece(t, s, data, 1, nil)
	// File times are as coarse as the kernel's tick: make the write visibly later.
	later := time.Unix(0, stats[0].MTime).Add(time.Second)
	if err := os.Chtimes(filepath.Join(dir, "p"), later, later); err != nil {
		t.Fatal(err)
	}
	have := bitfield.New(info.NumPieces())
	have.Set(0)
	have.Set(1)
	if err := s.SaveState(have, stats); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.loadState(); ok {
		t.Fatal("a resume file whose stat predates a write was trusted")
	}
	// No temp files left behind.
	ents, err := os.ReadDir(filepath.Dir(state))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("state dir holds %d entries, want 1", len(ents))
	}
}

// The resume file is read from disk and may be damaged in any way; it must never crash or
// be trusted when it does not match.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"version":1,"torrent":"x","have":"gA==","files":[{"size":1,"mtime_ns":2}]}`))
	f.Add([]byte(`{"version":1,"have":null,"files":null}`))
	f.Add([]byte(``))
	info, _ := makeTorrent(f, "z", 16*kib, true, []fileSpec{{"", 40 * kib, false}})
	dir := f.TempDir()
	state := filepath.Join(dir, "state")
	s, err := Open(dir, &metainfo.MetaInfo{Info: *info}, Options{StateFile: state})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteBlock(0, 0, make([]byte, 100)); err != nil {
		f.Fatal(err)
	}
	if err := s.SaveState(bitfield.New(info.NumPieces()), s.StatFiles()); err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(state)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(state, b, 0o644); err != nil {
			t.Fatal(err)
		}
		have, ok := s.loadState()
		if !ok {
			return
		}
		if have.Len() != info.NumPieces() {
			t.Fatalf("trusted a have set of %d pieces", have.Len())
		}
		var st stateFile
		if err := json.Unmarshal(b, &st); err != nil || st.Torrent != s.torrentID() ||
			!slices.Equal(st.Files, s.fileStats()) {
			t.Fatalf("trusted a resume file that does not match: %q", b)
		}
	})
}
