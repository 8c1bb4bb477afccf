package library

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

// stuckEngine never finds metadata and cannot start a torrent: enough to test the
// library's bookkeeping, which is all that runs without an engine.
type stuckEngine struct{}

func (stuckEngine) FetchMetadata(ctx context.Context, m *metainfo.Magnet) (*metainfo.MetaInfo, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (stuckEngine) Start(ctx context.Context, mi *metainfo.MetaInfo, m *metainfo.Magnet, progress func(done, total int)) (*Started, error) {
	return nil, errors.New("no engine in this test")
}

// recView records what a view is told, in order.
type recView struct {
	mu     sync.Mutex
	events []string
}

func (v *recView) add(s string)     { v.mu.Lock(); v.events = append(v.events, s); v.mu.Unlock() }
func (v *recView) Added(e *Entry)   { v.add("+" + e.Name()) }
func (v *recView) Ready(e *Entry)   { v.add("ready " + e.Name()) }
func (v *recView) Removed(e *Entry) { v.add("-" + e.Name()) }
func (v *recView) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.events, " ")
}

func magnet(hexDigit, dn string) string {
	l := "magnet:?xt=urn:btih:" + strings.Repeat(hexDigit, 40)
	if dn != "" {
		l += "&dn=" + dn
	}
	return l
}

func TestAddFindRemove(t *testing.T) {
	v := &recView{}
	l := New(stuckEngine{}, v, testutil.Log(t))
	t.Cleanup(l.Close)
	a, err := l.Add(Spec{Magnet: magnet("a", "film")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Add(Spec{Magnet: magnet("b", "film")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Add(Spec{Magnet: magnet("c", "")})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := l.Add(Spec{Magnet: magnet("d", "..")})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "film" || b.Name() != "film (2)" || c.Name() != strings.Repeat("c", 40) || bad.Name() != strings.Repeat("d", 40) {
		t.Errorf("names %q %q %q %q", a.Name(), b.Name(), c.Name(), bad.Name())
	}
	if _, err := l.Add(Spec{Magnet: magnet("A", "again")}); !errors.Is(err, ErrExists) {
		t.Errorf("same info-hash twice: %v", err)
	}
	for _, bad := range []Spec{{}, {Magnet: "magnet:?xt=urn:btih:123"}, {Torrent: []byte("d4:infoe")}} {
		if _, err := l.Add(bad); err == nil {
			t.Errorf("Add(%+v) succeeded", bad)
		}
	}
	for key, want := range map[string]*Entry{"film (2)": b, "bbbbbbbb": b, strings.Repeat("A", 40): a} {
		if e, err := l.Find(key); e != want {
			t.Errorf("Find(%q) = %v, %v", key, e, err)
		}
	}
	for _, key := range []string{"bbbbbbb", "nope", "film (3)"} {
		if _, err := l.Find(key); err == nil {
			t.Errorf("Find(%q) found something", key)
		}
	}
	if st := l.List(); len(st) != 4 || st[1].State != "fetching metadata" || st[1].InfoHash != strings.Repeat("b", 40) {
		t.Errorf("List: %+v", st)
	}
	if _, err := l.Remove("film", false); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Remove("film", false); err == nil {
		t.Error("removed twice")
	}
	// The name is free again.
	again, _ := l.Add(Spec{Magnet: magnet("e", "film")})
	if again.Name() != "film" {
		t.Errorf("name after removal: %q", again.Name())
	}
	want := "+film +film (2) +" + strings.Repeat("c", 40) + " +" + strings.Repeat("d", 40) + " -film +film"
	if v.String() != want {
		t.Errorf("view saw\n%s\nwant\n%s", v, want)
	}
	l.Close()
	if n := len(l.List()); n != 0 {
		t.Errorf("%d entries after Close", n)
	}
	if _, err := l.Add(Spec{Magnet: magnet("f", "")}); err == nil {
		t.Error("Add after Close succeeded")
	}
}

// Find's failures say which they are, for callers that answer each differently.
func TestFindErrors(t *testing.T) {
	l := New(stuckEngine{}, &recView{}, testutil.Log(t))
	t.Cleanup(l.Close)
	for _, h := range []string{strings.Repeat("b", 40), strings.Repeat("b", 8) + strings.Repeat("0", 32)} {
		if _, err := l.Add(Spec{Magnet: "magnet:?xt=urn:btih:" + h}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Find("bbbbbbbb"); !errors.Is(err, ErrAmbiguous) || errors.Is(err, ErrNotFound) {
		t.Errorf("a shared prefix: %v", err)
	}
	if _, err := l.Remove("nope", false); !errors.Is(err, ErrNotFound) || err.Error() != `no torrent named "nope" in the library` {
		t.Errorf("an unknown name: %v", err)
	}
	if _, err := l.Find("bbbbbbbb0"); err != nil {
		t.Errorf("a longer prefix: %v", err)
	}
}

func TestStartFailureIsListed(t *testing.T) {
	l := New(stuckEngine{}, &recView{}, testutil.Log(t))
	t.Cleanup(l.Close)
	src := filepath.Join(t.TempDir(), "file.bin")
	os.WriteFile(src, make([]byte, 100<<10), 0o644)
	_, b, err := metainfo.Create(context.Background(), src, metainfo.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.Add(Spec{Torrent: b, Origin: "x.torrent"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the failure to show", func() bool { return e.Status().State == "failed" })
	if st := e.Status(); !strings.Contains(st.Error, "no engine in this test") || st.Size == 0 {
		t.Errorf("status %+v", st)
	}
}

func TestControlSocket(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	l := New(stuckEngine{}, &recView{}, testutil.Log(t))
	t.Cleanup(l.Close)
	mnt := filepath.Join(t.TempDir(), "mnt")
	path := SocketPath(mnt)
	if SocketPath(mnt+"/") != path || SocketPath(mnt+"x") == path {
		t.Error("socket path does not follow the mount point")
	}
	srv, err := ListenControl(path, l, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v", st.Mode())
	}
	if st, _ := os.Stat(filepath.Dir(path)); st.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v", st.Mode())
	}
	if _, err := ListenControl(path, l, testutil.Log(t)); err == nil {
		t.Error("a second server took a socket in use")
	}
	resp, err := Call(mnt, Request{Op: "add", Torrents: []Spec{{Magnet: magnet("1", "one")}, {Magnet: "magnet:?bad"}, {Magnet: magnet("2", "two")}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Torrents) != 2 || len(resp.Errors) != 1 || resp.Error != "" {
		t.Errorf("add: %+v", resp)
	}
	resp, _ = Call(mnt, Request{Op: "ls"})
	if len(resp.Torrents) != 2 || resp.Torrents[0].Name != "one" {
		t.Errorf("ls: %+v", resp)
	}
	resp, _ = Call(mnt, Request{Op: "rm", Key: "two"})
	if resp.Error != "" || len(l.List()) != 1 {
		t.Errorf("rm: %+v", resp)
	}
	resp, _ = Call(mnt, Request{Op: "rm", Key: "two"})
	if !strings.Contains(resp.Error, "no torrent named") {
		t.Errorf("rm of a missing torrent: %+v", resp)
	}
	resp, _ = Call(mnt, Request{Op: "format"})
	if !strings.Contains(resp.Error, "unknown operation") {
		t.Errorf("unknown op: %+v", resp)
	}
	if _, err := Call(filepath.Join(t.TempDir(), "other"), Request{Op: "ls"}); err == nil || !strings.Contains(err.Error(), "no torrentfs mount") {
		t.Errorf("call to no mount: %v", err)
	}
	srv.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

func TestReadMagnetFile(t *testing.T) {
	link := magnet("a", "x")
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{link, true},
		{link + "\n", true},
		{"\xef\xbb\xbf  " + link + "  \r\n", true},
		{"# saved from a page\n\n" + link + "\nmore text\n", true},
		{"", false},
		{"# only a comment\n", false},
		{"http://example.invalid/x.torrent\n" + link, false},
		{"magnet:?xt=urn:btih:zz", false},
		{strings.Repeat("#", maxMagnetFile+1), false},
	} {
		m, got, err := ReadMagnetFile([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%.40q: %v", tc.in, err)
			continue
		}
		if tc.ok && (got != link || m.InfoHash.HexString() != strings.Repeat("a", 40)) {
			t.Errorf("%.40q: got %q", tc.in, got)
		}
	}
}

func FuzzReadMagnetFile(f *testing.F) {
	f.Add([]byte(magnet("a", "x") + "\n"))
	f.Add([]byte("# c\n\n" + magnet("b", "") + "&tr=udp://127.0.0.1:1/announce\n"))
	f.Add([]byte("\xef\xbb\xbfmagnet:?xt=urn:btih:" + strings.Repeat("A", 32)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, link, err := ReadMagnetFile(b)
		if err != nil {
			return
		}
		// What it returns is a link found in the file that parses to the same torrent.
		if !strings.Contains(string(b), link) {
			t.Fatalf("link %q not in the file", link)
		}
		again, err := metainfo.ParseMagnet(link)
		if err != nil || again.InfoHash != m.InfoHash {
			t.Fatalf("link %q does not parse again: %v", link, err)
		}
	})
}

func TestWatcher(t *testing.T) {
	v := &recView{}
	l := New(stuckEngine{}, v, testutil.Log(t))
	t.Cleanup(l.Close)
	dir := t.TempDir()
	w, err := NewWatcher(dir, l, time.Hour, testutil.Log(t))
	if err != nil {
		t.Fatal(err)
	}
	w.settle = 0 // report bad files at once
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names := func() string {
		var out []string
		for _, s := range l.List() {
			out = append(out, s.Name)
		}
		return strings.Join(out, ",")
	}
	write("a.magnet", magnet("a", "alpha")+"\n")
	write("b.MAGNET", magnet("b", "beta"))
	write("notes.txt", magnet("c", "gamma"))
	write(".hidden.magnet", magnet("d", "delta"))
	write("broken.magnet", "not a link")
	write("broken.torrent", "d8:announce")
	w.Scan()
	if got := names(); got != "alpha,beta" {
		t.Fatalf("after the first scan: %q", got)
	}
	// Added by hand, then dropped in the directory too: deleting the file leaves it.
	if _, err := l.Add(Spec{Magnet: magnet("e", "epsilon")}); err != nil {
		t.Fatal(err)
	}
	write("e.magnet", magnet("e", "other name"))
	w.Scan()
	if got := names(); got != "alpha,beta,epsilon" {
		t.Fatalf("after adding a known one: %q", got)
	}
	os.Remove(filepath.Join(dir, "a.magnet"))
	os.Remove(filepath.Join(dir, "e.magnet"))
	w.Scan()
	if got := names(); got != "beta,epsilon" {
		t.Fatalf("after deleting files: %q", got)
	}
	// A file rewritten to name another torrent swaps them; rewritten the same, nothing moves.
	write("b.MAGNET", magnet("b", "beta")+"\n# touched\n")
	w.Scan()
	write("b.MAGNET", magnet("f", "phi"))
	os.Chtimes(filepath.Join(dir, "b.MAGNET"), time.Now(), time.Now().Add(time.Second))
	w.Scan()
	if got := names(); got != "epsilon,phi" {
		t.Fatalf("after rewriting: %q", got)
	}
	if strings.Count(v.String(), "-beta") != 1 {
		t.Errorf("beta removed other than once: %s", v)
	}
	// A file that does not parse is reported once, not on every scan; fixed, it is added.
	write("broken.magnet", magnet("9", "fixed"))
	os.Chtimes(filepath.Join(dir, "broken.magnet"), time.Now(), time.Now().Add(2*time.Second))
	w.Scan()
	if got := names(); got != "epsilon,phi,fixed" {
		t.Fatalf("after fixing a file: %q", got)
	}
}

// A v2-only torrent and a link with only a v2 info-hash are added like any other: each is
// known by its swarm's hash (the v2 one truncated) and listed, found and removed by the
// whole v2 info-hash or a prefix of it; the same torrent's link is a duplicate.
func TestAddV2Only(t *testing.T) {
	l := New(stuckEngine{}, &recView{}, testutil.Log(t))
	t.Cleanup(l.Close)
	dir := filepath.Join(t.TempDir(), "set")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "a.bin"), make([]byte, 100<<10), 0o644)
	os.WriteFile(filepath.Join(dir, "b.bin"), []byte("b"), 0o644)
	mi, b, err := metainfo.Create(context.Background(), dir, metainfo.CreateOptions{Version: metainfo.V2, PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.Add(Spec{Torrent: b})
	if err != nil {
		t.Fatal(err)
	}
	v2 := mi.InfoHashV2.HexString()
	if e.Hash != mi.InfoHashV2.Truncate() || e.Status().InfoHash != v2 {
		t.Errorf("entry hash %s, listed as %q; want %s", e.Hash, e.Status().InfoHash, v2)
	}
	if _, err := l.Add(Spec{Magnet: mi.Magnet().String()}); !errors.Is(err, ErrExists) {
		t.Errorf("its btmh link added beside it: %v", err)
	}
	for _, key := range []string{v2, v2[:8], v2[:40]} {
		if got, err := l.Find(key); got != e {
			t.Errorf("Find(%q) = %v, %v", key, got, err)
		}
	}
	if _, err := l.Remove(v2, false); err != nil {
		t.Fatal(err)
	}
	m, err := l.Add(Spec{Magnet: "magnet:?xt=urn:btmh:1220" + v2 + "&dn=set"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Hash != mi.InfoHashV2.Truncate() || m.Status().InfoHash != v2 || m.Name() != "set" {
		t.Errorf("btmh link: hash %s, listed %q, name %q", m.Hash, m.Status().InfoHash, m.Name())
	}

	// A v2-only torrent missing a piece layer (not from a torrent file) is refused.
	bare := *mi
	bare.PieceLayers = nil
	if err := Transferable(&bare); err == nil || !strings.Contains(err.Error(), "piece layer") {
		t.Errorf("Transferable without piece layers: %v", err)
	}
	if err := Transferable(mi); err != nil {
		t.Error(err)
	}
}
