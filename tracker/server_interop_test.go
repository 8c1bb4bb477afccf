package tracker

// Interop: two real aria2c processes find each other through our tracker and move a file.
// Run under netjail: aria2c's DHT (needed for UDP trackers) must not reach the internet.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"torrentfs/metainfo"
)

// srvNeedTools fails the test when a tool is missing, or skips it when the environment
// says skipping is fine (TORRENTFS_ALLOW_SKIP=1): CI must run these tests.
func srvNeedTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not installed (Debian package %s; scripts/test installs it)", tool, map[string]string{"aria2c": "aria2"}[tool])
			if os.Getenv("TORRENTFS_ALLOW_SKIP") == "1" {
				t.Skip(msg)
			}
			t.Fatal(msg)
		}
	}
}

// srvFreePort returns a port that was free on ip for both TCP and UDP a moment ago.
// aria2c takes port numbers, not sockets, so a small race with other binds remains.
func srvFreePort(t *testing.T, ip string) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatalf("no free port on %s", ip)
	return 0
}

// srvAria2 is one running aria2c.
type srvAria2 struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // Wait's result, set before done is closed
}

// startSrvAria2 runs aria2c on its own loopback address with DHT on a free port when dht
// is set (aria2c speaks to UDP trackers only through its DHT socket) and off otherwise.
func startSrvAria2(t *testing.T, ip, dir, torrent string, dht bool, extra ...string) *srvAria2 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	args := []string{
		"--no-conf=true", "--summary-interval=0", "--console-log-level=notice",
		"--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--interface=" + ip, "--listen-port=" + strconv.Itoa(srvFreePort(t, ip)),
		"--dht-file-path=" + filepath.Join(dir, "dht.dat"),
		"--bt-tracker-connect-timeout=10", "--bt-tracker-timeout=10",
		"-d", dir,
	}
	if dht {
		args = append(args, "--enable-dht=true", "--dht-listen-port="+strconv.Itoa(srvFreePort(t, ip)))
	} else {
		args = append(args, "--enable-dht=false")
	}
	args = append(args, extra...)
	args = append(args, torrent)
	logPath := filepath.Join(dir, "aria2c.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "aria2c", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start aria2c: %v", err)
	}
	a := &srvAria2{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		a.err = cmd.Wait()
		logf.Close()
		close(a.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cancel()
		<-a.done // Wait has returned: the process is reaped
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("aria2c %v:\n%s", args, b)
		}
	})
	return a
}

func srvSHA256(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestServerInteropAria2(t *testing.T) {
	srvNeedTools(t, "aria2c", "mktorrent")
	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			srv := startSrvTestServer(t, ServerConfig{})
			announce := fmt.Sprintf("%s://127.0.0.1:%d/announce", proto, srv.port)
			dir := t.TempDir()
			seedDir, dlDir := filepath.Join(dir, "seed"), filepath.Join(dir, "dl")
			for _, d := range []string{seedDir, dlDir} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// 1.5 MiB and a bit: many 64 KiB pieces and a short last one.
			data := make([]byte, 3<<19+12345)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			src := filepath.Join(seedDir, "data.bin")
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			torrent := filepath.Join(dir, "data.torrent")
			if out, err := exec.Command("mktorrent", "-a", announce, "-d", "-l", "16", "-o", torrent, src).CombinedOutput(); err != nil {
				t.Fatalf("mktorrent: %v\n%s", err, out)
			}
			mi, err := metainfo.Load(torrent)
			if err != nil {
				t.Fatal(err)
			}
			ih := [20]byte(mi.InfoHash)

			dht := proto == "udp"
			seeder := startSrvAria2(t, "127.0.0.11", seedDir, torrent, dht, "--seed-ratio=0.0", "--check-integrity=true")
			// The downloader must find the seeder in its first reply: wait until the
			// seeder has announced itself complete.
			deadline := time.Now().Add(60 * time.Second)
			for srv.Stats(ih).Complete != 1 {
				select {
				case <-seeder.done:
					t.Fatalf("seeder exited before announcing: %v", seeder.err)
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("seeder did not announce over %s within 60s; stats %+v", proto, srv.Stats(ih))
				}
				time.Sleep(50 * time.Millisecond) // poll interval, not a stand-in for the condition
			}

			leecher := startSrvAria2(t, "127.0.0.12", dlDir, torrent, dht, "--seed-time=0")
			select {
			case <-leecher.done:
				if leecher.err != nil {
					b, _ := os.ReadFile(leecher.log)
					t.Fatalf("downloader: %v\n%s", leecher.err, b)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("downloader did not finish within 2 minutes")
			}
			if got, want := srvSHA256(t, filepath.Join(dlDir, "data.bin")), sha256.Sum256(data); got != want {
				t.Fatalf("downloaded file sha256 %x, want %x", got, want)
			}
			// The downloader's stop reached the tracker: the swarm is the seeder alone.
			deadline = time.Now().Add(30 * time.Second)
			for st := srv.Stats(ih); st != (ScrapeStats{Complete: 1, Downloaded: st.Downloaded}); st = srv.Stats(ih) {
				if time.Now().After(deadline) {
					t.Fatalf("after the download: stats %+v, want the seeder alone", st)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
