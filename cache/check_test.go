package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"torrentfs/metainfo"
)

// A 1 GiB sparse file with 3 pieces written: Check must hash those 3 and skip the holes.
func TestCheckSkipsHoles(t *testing.T) {
	const pieceLen = 256 * kib
	const total = 1 << 30
	n := total / pieceLen
	info := &metainfo.Info{Name: "big", PieceLength: pieceLen, Single: true, TotalLength: total,
		Files: []metainfo.File{{Length: total}}, Pieces: make([]metainfo.Hash, n)}
	// Only the pieces we write need real hashes; the rest are never written and must not be
	// hashed at all. Give them a non-zero-piece hash so the all-zero exception stays out.
	for i := range info.Pieces {
		info.Pieces[i][0] = 1
	}
	written := []int{0, 1234, n - 1}
	pieces := map[int][]byte{}
	for k, i := range written {
		p := bytes.Repeat([]byte{byte(k + 1)}, pieceLen)
		pieces[i] = p
		info.Pieces[i] = sha1Sum(p)
	}
	dir := t.TempDir()
	s := open(t, dir, info, Options{})
	for _, i := range written {
		if err := s.WriteBlock(i, 0, pieces[i]); err != nil {
			t.Fatal(err)
		}
		verify(t, s, i, true)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir, info, Options{})
	calls := 0
	have, err := s2.Check(context.Background(), func(done, total int) {
		calls++
		if total != n || done != calls {
			t.Fatalf("progress(%d, %d) on call %d", done, total, calls)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.hashed.Load(); got != int64(len(written)) {
		t.Errorf("Check hashed %d pieces, want %d", got, len(written))
	}
	if got := have.Count(); got != len(written) {
		t.Errorf("Check found %d pieces, want %d", got, len(written))
	}
	for _, i := range written {
		if !have.Has(i) {
			t.Errorf("piece %d not found", i)
		}
	}
}

// A piece that is all zeros may sit in a hole (a sparse copy) and is still genuine.
func TestCheckZeroPieceInHole(t *testing.T) {
	info, data := makeTorrent(t, "z", 32*kib, true, []fileSpec{{"", 128 * kib, false}})
	clear(data[32*kib : 64*kib])
	info.Pieces[1] = sha1Sum(data[32*kib : 64*kib])
	dir := t.TempDir()
	// Write the file with piece 1 left as a hole.
	f, err := os.Create(filepath.Join(dir, "z"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(info.TotalLength); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2, 3} {
		if _, err := f.WriteAt(data[i*32*kib:(i+1)*32*kib], int64(i)*32*kib); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	s := open(t, dir, info, Options{})
	have, err := s.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !have.All() {
		t.Fatalf("have %v, want all 4 pieces", have.Bytes())
	}
}

func TestCheckCancel(t *testing.T) {
	info, data := makeTorrent(t, "c", 16*kib, true, []fileSpec{{"", 2 << 20, false}})
	dir := t.TempDir()
	writeFiles(t, dir, info, data)
	before := runtime.NumGoroutine()
	s := open(t, dir, info, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	have, err := s.Check(ctx, func(done, total int) {
		calls++
		if done == 5 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check after cancel: %v, want context.Canceled", err)
	}
	if calls >= info.NumPieces() {
		t.Errorf("Check ran to the end (%d progress calls) despite cancel", calls)
	}
	if have.Len() != 0 {
		t.Error("a cancelled Check returned a have set")
	}
	// Check's workers must all be gone.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before Check", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
}

func TestReadOnlyExistingData(t *testing.T) {
	files := []fileSpec{{"a", 50 * kib, false}, {"sub/b", 70*kib + 3, false}, {"c", 0, false}, {"d", 40 * kib, false}}
	info, data := makeTorrent(t, "ro", 32*kib, false, files)
	dir := t.TempDir()
	writeFiles(t, dir, info, data)
	dPath := filepath.Join(dir, "ro", "d")
	if err := os.Remove(dPath); err != nil {
		t.Fatal(err)
	}
	cPath := filepath.Join(dir, "ro", "c")
	if err := os.Remove(cPath); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, info, Options{ReadOnly: true})
	have, err := s.Check(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// d is bytes [120K+3, 160K+3): pieces 3 and 4 touch it.
	for i := range info.NumPieces() {
		want := i < 3
		if have.Has(i) != want {
			t.Errorf("piece %d present=%v, want %v", i, have.Has(i), want)
		}
	}
	got := make([]byte, 96*kib)
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, data[:96*kib]) {
		t.Fatalf("ReadAt: %v (equal=%v)", err, bytes.Equal(got, data[:96*kib]))
	}
	if err := s.WriteBlock(3, 0, data[96*kib:97*kib]); !errors.Is(err, ErrReadOnly) {
		t.Errorf("WriteBlock on read-only: %v", err)
	}
	for _, p := range []string{dPath, cPath} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("read-only storage created %s", p)
		}
	}
}
