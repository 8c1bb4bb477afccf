package cache

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
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
			for i := range want {
				writePiece(t, s, data, i, nil)
				verify(t, s, i, true)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.tamper(t, dir, state)
			s2 := open(t, dir, info, Options{StateFile: state})
			if err := s2.Check(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if hashed := s2.hashed.Load() > 0; hashed != tc.wantHashed {
				t.Errorf("hashed %d pieces; want hashing=%v", s2.hashed.Load(), tc.wantHashed)
			}
			if tc.name == "file removed" {
				want = map[int]bool{5: true} // a is pieces 0-3
			}
			for i := range info.NumPieces() {
				if s2.HasPiece(i) != want[i] {
					t.Errorf("piece %d present=%v, want %v", i, s2.HasPiece(i), want[i])
				}
			}
		})
	}
}

func TestResumeFileWrittenPeriodically(t *testing.T) {
	info, data := makeTorrent(t, "p", 16*kib, true, []fileSpec{{"", 100 * kib, false}})
	state := filepath.Join(t.TempDir(), "state")
	s := open(t, t.TempDir(), info, Options{StateFile: state, StateEvery: 2})
	writePiece(t, s, data, 0, nil)
	verify(t, s, 0, true)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("state file written after 1 piece (err %v)", err)
	}
	writePiece(t, s, data, 1, nil)
	verify(t, s, 1, true)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("state file not written after 2 pieces: %v", err)
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
	s, err := Open(dir, info, Options{StateFile: state})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteBlock(0, 0, make([]byte, 100)); err != nil {
		f.Fatal(err)
	}
	if err := s.saveState(); err != nil {
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
