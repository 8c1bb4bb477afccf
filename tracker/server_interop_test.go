package tracker

// Interop: two real aria2c processes find each other through our tracker and move a file.
// Run under netjail: aria2c's DHT (needed for UDP trackers) must not reach the internet.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"torrentfs/internal/testpeers"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

func TestServerInteropAria2(t *testing.T) {
	testutil.Need(t, "aria2c", "mktorrent")
	for _, proto := range []string{"http", "udp"} {
		t.Run(proto, func(t *testing.T) {
			srv := startSrvTestServer(t, ServerConfig{})
			announce := fmt.Sprintf("%s://127.0.0.1:%d/announce", proto, srv.port)
			seedDir, dlDir := t.TempDir(), t.TempDir()
			// 1.5 MiB and a bit: many 64 KiB pieces and a short last one.
			testpeers.WriteFiles(t, seedDir, map[string]int64{"data.bin": 3<<19 + 12345}, 1)
			src := filepath.Join(seedDir, "data.bin")
			torrent := filepath.Join(t.TempDir(), "data.torrent")
			if out, err := exec.Command("mktorrent", "-a", announce, "-d", "-l", "16", "-o", torrent, src).CombinedOutput(); err != nil {
				t.Fatalf("mktorrent: %v\n%s", err, out)
			}
			mi, err := metainfo.Load(torrent)
			if err != nil {
				t.Fatal(err)
			}
			ih := [20]byte(mi.InfoHash)

			udp := proto == "udp"
			seeder, _ := testpeers.Aria2(t, torrent, seedDir, testpeers.Aria2Opts{IP: "127.0.0.11", UDPTracker: udp, Seed: true})
			// The downloader must find the seeder in its first reply: wait until the
			// seeder has announced itself complete.
			testutil.WaitFor(t, 60*time.Second, "seeder did not announce over "+proto, func() bool {
				if seeder.Exited() {
					t.Fatalf("seeder exited before announcing:\n%s", seeder.Output())
				}
				return srv.Stats(ih).Complete == 1
			})
			leecher, _ := testpeers.Aria2(t, torrent, dlDir, testpeers.Aria2Opts{IP: "127.0.0.12", UDPTracker: udp})
			if err := leecher.Wait(t, 2*time.Minute); err != nil {
				t.Fatalf("downloader: %v\n%s", err, leecher.Output())
			}
			want, _ := os.ReadFile(src)
			got, err := os.ReadFile(filepath.Join(dlDir, "data.bin"))
			if err != nil || string(got) != string(want) {
				t.Fatalf("downloaded file differs from the original (%v)", err)
			}
			// The downloader's stop reached the tracker: the swarm is the seeder alone.
			testutil.WaitFor(t, 30*time.Second, "the downloader's stop did not reach the tracker", func() bool {
				st := srv.Stats(ih)
				return st == ScrapeStats{Complete: 1, Downloaded: st.Downloaded}
			})
		})
	}
}
