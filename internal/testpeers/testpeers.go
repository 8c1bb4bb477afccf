// Package testpeers starts real third-party BitTorrent programs (aria2c, Transmission,
// qBittorrent, opentracker) on loopback for tests, and makes test data. Only tests import
// it. Every process it starts is a testutil.Proc, killed and waited for in t.Cleanup; every
// port comes from the kernel, never a fixed number. Helpers that are not about peers (waits,
// child processes, loggers) live in internal/testutil.
package testpeers

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// FreePort returns a port that is free for both TCP and UDP on ip right now.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// WriteFiles writes files of pseudo-random bytes (deterministic per seed) under dir;
// sizes maps slash-separated relative paths to lengths.
func WriteFiles(t testing.TB, dir string, sizes map[string]int64, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed+1))
	for _, name := range sortedKeys(sizes) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, sizes[name])
		for i := 0; i+8 <= len(buf); i += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		for i := len(buf) &^ 7; i < len(buf); i++ {
			buf[i] = byte(r.Uint32())
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// SameTree fails the test unless every file under want exists under got with the same
// sha256.
func SameTree(t testing.TB, want, got string) {
	t.Helper()
	n := 0
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, b := fileSum(t, p), fileSum(t, filepath.Join(got, rel))
		if a != b {
			t.Errorf("%s differs: sha256 %x, want %x", rel, b, a)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files under %s", want)
	}
}

func fileSum(t testing.TB, p string) [32]byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("read %s: %v", p, err)
		return [32]byte{}
	}
	return sha256.Sum256(b)
}

// Opentracker starts Debian's opentracker on 127.0.0.1 serving the given info-hashes (it
// serves only whitelisted ones) and returns its HTTP and UDP announce URLs.
func Opentracker(t testing.TB, infoHashes ...[20]byte) (httpURL, udpURL string) {
	t.Helper()
	testutil.Need(t, "opentracker")
	dir := t.TempDir()
	var wl strings.Builder
	for _, h := range infoHashes {
		fmt.Fprintf(&wl, "%x\n", h)
	}
	if err := os.WriteFile(filepath.Join(dir, "whitelist"), []byte(wl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t, "127.0.0.1")
	ps := strconv.Itoa(port)
	// It refuses -u as root; -d is where it chroots and finds the whitelist.
	testutil.Start(t, "opentracker", "-i", "127.0.0.1", "-p", ps, "-P", ps, "-d", dir, "-w", "whitelist")
	addr := "127.0.0.1:" + ps
	testutil.WaitListening(t, addr, 5*time.Second)
	return "http://" + addr + "/announce", "udp://" + addr + "/announce"
}

// Aria2Opts configures an aria2c process.
type Aria2Opts struct {
	IP          string // bind address, e.g. 127.0.0.11 (one IP per client: see INTEROP.md)
	UploadLimit string // --max-upload-limit, e.g. "2M"
	Port        int    // listen port; 0 picks a free one on IP (which must be local then)
	UDPTracker  bool   // aria2c reaches UDP trackers only through its DHT socket
	Seed        bool   // keep running once complete: set it for seeders, whose data is complete at start
	// RequireCrypto makes it speak MSE/PE with RC4 only (--bt-require-crypto with
	// --bt-min-crypto-level=arc4): no plaintext handshakes, no plaintext inside MSE.
	RequireCrypto bool
	// DHTEntry, when set, turns its DHT on (IPv4, on DHTPort) with this HOST:PORT as the
	// only node it starts from.
	DHTEntry string
	DHTPort  int
	// Wrap is put before the command, e.g. a netns.Host's Prefix.
	Wrap []string
}

// Aria2 starts aria2c on a torrent with data in dir: a seeder when the data is complete
// there, a downloader otherwise. It returns the process and the port it listens on.
func Aria2(t testing.TB, torrent, dir string, o Aria2Opts) (*testutil.Proc, int) {
	t.Helper()
	testutil.Need(t, "aria2c")
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	port := o.Port
	if port == 0 {
		port = FreePort(t, o.IP)
	}
	args := []string{
		"--dir=" + dir, "--listen-port=" + strconv.Itoa(port), "--interface=" + o.IP,
		"--seed-ratio=0.0", "--check-integrity=true", "--bt-enable-lpd=false",
		"--enable-peer-exchange=false", "--bt-seed-unverified=false", "--file-allocation=none",
		"--summary-interval=0", "--console-log-level=notice", "--bt-max-peers=50",
		"--bt-tracker-connect-timeout=5", "--bt-tracker-interval=2", "--bt-stop-timeout=0",
		"--follow-torrent=false", "--allow-overwrite=true", "--auto-file-renaming=false",
		"--disk-cache=0", "--stop-with-process=" + strconv.Itoa(os.Getpid()),
	}
	switch {
	case o.DHTEntry != "":
		args = append(args, "--enable-dht=true", "--enable-dht6=false", "--dht-listen-port="+strconv.Itoa(o.DHTPort),
			"--dht-entry-point="+o.DHTEntry, "--dht-file-path="+filepath.Join(t.TempDir(), "dht.dat"))
	case o.UDPTracker:
		dht := FreePort(t, o.IP)
		args = append(args, "--enable-dht=true", "--dht-listen-port="+strconv.Itoa(dht),
			"--dht-file-path="+filepath.Join(t.TempDir(), "dht.dat"))
	default:
		args = append(args, "--enable-dht=false")
	}
	if o.UploadLimit != "" {
		args = append(args, "--max-upload-limit="+o.UploadLimit)
	}
	if !o.Seed {
		args = append(args, "--seed-time=0")
	}
	if o.RequireCrypto {
		args = append(args, "--bt-require-crypto=true", "--bt-min-crypto-level=arc4")
	}
	args = append(args, torrent)
	argv := append(append(append([]string{}, o.Wrap...), "aria2c"), args...)
	return testutil.Start(t, argv[0], argv[1:]...), port
}

// TreeMatches tells whether every file under want exists under got with the same bytes.
func TreeMatches(want, got string) bool {
	ok := true
	filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !ok {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, err1 := os.ReadFile(p)
		b, err2 := os.ReadFile(filepath.Join(got, rel))
		ok = err1 == nil && err2 == nil && bytes.Equal(a, b)
		return nil
	})
	return ok
}
