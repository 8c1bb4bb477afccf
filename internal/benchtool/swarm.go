package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"torrentfs/metainfo"
	"torrentfs/tracker"
)

// swarmConfig says what to seed and how.
type swarmConfig struct {
	torrentfs   string // binary, for its tracker
	trackerAddr string // host:port the torrent's announce URL points at
	torrent     string
	data        string // the torrent's content (file or directory named like the torrent)
	work        string // where seeder directories and logs go
	seeders     int
	uploadLimit string   // aria2c --max-upload-limit per seeder; "" for none
	noTracker   bool     // another swarm's tracker serves this torrent too
	label       string   // names the seeders' directories, logs and ports apart
	portBase    int      // seeder i listens on portBase+i
	seeder      string   // "aria2c" (default), "torrentfs", "qbittorrent" or "transmission"
	seederArgs  []string // more flags for torrentfs seeders (--no-pex, --cpuprofile)
}

// swarm is our tracker and aria2c seeders, each seeder on its own loopback address
// (127.0.0.11, .12, ...) because libtorrent-based clients accept one connection per IP.
type swarm struct {
	procs []*proc
}

func startSwarm(ctx context.Context, cfg swarmConfig) (*swarm, error) {
	mi, err := metainfo.Load(cfg.torrent)
	if err != nil {
		return nil, err
	}
	s := &swarm{}
	if !cfg.noTracker {
		// A short interval lets the tracker forget a stopped client quickly. libtorrent
		// (qBittorrent) never re-announces sooner than every 5 minutes whatever it is told,
		// so with it a short interval would expire the seeders mid-run.
		interval := "10s"
		if cfg.seeder == "qbittorrent" {
			interval = "10m"
		}
		tr, err := start("tracker", filepath.Join(cfg.work, "logs", "tracker.log"),
			cfg.torrentfs, "tracker", "--listen", cfg.trackerAddr, "--interval", interval)
		if err != nil {
			return nil, err
		}
		s.procs = append(s.procs, tr)
	}
	if cfg.portBase == 0 {
		cfg.portBase = 6880
	}
	for i := 1; i <= cfg.seeders; i++ {
		name := fmt.Sprintf("seed%d%s", i, cfg.label)
		dir := filepath.Join(cfg.work, name)
		if err := linkTree(cfg.data, filepath.Join(dir, mi.Info.Name)); err != nil {
			s.stop()
			return nil, err
		}
		ip, port := fmt.Sprintf("127.0.0.%d", 10+i), strconv.Itoa(cfg.portBase+i)
		var args []string
		switch cfg.seeder {
		case "", "aria2c", "aria2":
			args = []string{"aria2c", "--dir=" + dir, "--seed-ratio=0.0", "--bt-seed-unverified=true",
				"--check-integrity=false", "--enable-dht=false", "--enable-dht6=false",
				"--bt-enable-lpd=false", "--enable-peer-exchange=false",
				"--interface=" + ip, "--listen-port=" + port,
				"--console-log-level=warn", "--summary-interval=0", "--file-allocation=none",
				"--bt-max-peers=0"}
			if cfg.uploadLimit != "" {
				args = append(args, "--max-upload-limit="+cfg.uploadLimit)
			}
		case "torrentfs":
			// Our own seeder, to tell the engine's download side from aria2c's upload pacing.
			args = []string{cfg.torrentfs, "seed", "--no-dht", "--no-lsd", "--no-port-map", "--data", dir, "--listen", ip + ":" + port}
			if cfg.uploadLimit != "" {
				args = append(args, "--upload-limit", cfg.uploadLimit)
			}
			args = append(args, cfg.seederArgs...)
		case "transmission":
			// Transmission announces the source address of its HTTP request, which is
			// 127.0.0.1 whatever it binds, so its seeders share 127.0.0.1 on their own ports.
			limit, err := parseRate(cfg.uploadLimit)
			if err != nil {
				s.stop()
				return nil, err
			}
			cfgDir := filepath.Join(cfg.work, name+"-config")
			if err := transmissionSeederConfig(cfgDir, dir, "127.0.0.1", cfg.portBase+i, limit); err != nil {
				s.stop()
				return nil, err
			}
			args = []string{"transmission-cli", "-g", cfgDir, "-w", dir, "-p", port}
		case "qbittorrent":
			limit, err := parseRate(cfg.uploadLimit)
			if err != nil {
				s.stop()
				return nil, err
			}
			p, err := startQBittorrent(ctx, name, filepath.Join(cfg.work, "logs", name+".log"),
				filepath.Join(cfg.work, name+"-profile"), ip, cfg.portBase+i, limit, cfg.torrent, dir)
			if err != nil {
				s.stop()
				return nil, err
			}
			s.procs = append(s.procs, p)
			continue
		default:
			s.stop()
			return nil, fmt.Errorf("unknown seeder %q", cfg.seeder)
		}
		args = append(args, cfg.torrent)
		p, err := start(name, filepath.Join(cfg.work, "logs", name+".log"), args...)
		if err != nil {
			s.stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	// Ready when the tracker counts every seeder as complete: downloaders then get all of
	// them from their first announce.
	announce := "http://" + cfg.trackerAddr + "/announce"
	var complete int
	err = poll(ctx, 60*time.Second, 100*time.Millisecond, func() bool {
		for _, p := range s.procs {
			if p.exited() {
				return true
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := tracker.Scrape(sctx, announce, [][20]byte{mi.InfoHash})
		if err != nil {
			return false
		}
		complete = st[mi.InfoHash].Complete
		return complete >= cfg.seeders
	})
	for _, p := range s.procs {
		if p.exited() {
			err = fmt.Errorf("%s exited early: %v (see %s/logs)", p.name, p.err, cfg.work)
		}
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("wait for %d seeders (tracker counts %d): %w", cfg.seeders, complete, err)
	}
	var addrs []string
	for i := 1; i <= cfg.seeders; i++ {
		ip := fmt.Sprintf("127.0.0.%d", 10+i)
		if cfg.seeder == "transmission" {
			ip = "127.0.0.1"
		}
		addrs = append(addrs, net.JoinHostPort(ip, strconv.Itoa(cfg.portBase+i)))
	}
	if err := warmSeeders(ctx, mi.InfoHash, addrs); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// cpu is the user+system CPU seconds the swarm's live processes (tracker and seeders) have
// used so far; the difference across a download is what serving it cost them.
func (s *swarm) cpu() float64 {
	var t float64
	for _, p := range s.procs {
		t += procCPU(p.pid())
	}
	return t
}

func (s *swarm) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop(5 * time.Second)
	}
}

// linkTree hard-links src (a file or a directory tree) to dst, once: seeders share the bytes
// on disk but each has its own directory.
func linkTree(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-al", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("link %s to %s: %v: %s", src, dst, err, out)
	}
	return nil
}

// runSwarm: benchtool swarm runs only the tracker and seeders of one torrent until
// interrupted, for looking at a client by hand (with --log-level debug) in the same setting
// as the benchmarks.
func runSwarm(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("swarm", flag.ContinueOnError)
	var cfg swarmConfig
	fl.StringVar(&cfg.torrentfs, "torrentfs", ".bench/torrentfs", "torrentfs binary, for its tracker")
	fl.StringVar(&cfg.torrent, "torrent", "", "the torrent")
	fl.StringVar(&cfg.data, "data", "", "its content")
	fl.StringVar(&cfg.work, "work", ".bench/swarm", "scratch directory")
	fl.StringVar(&cfg.trackerAddr, "tracker", "127.0.0.1:6969", "tracker address the torrent announces to")
	fl.StringVar(&cfg.uploadLimit, "upload-limit", "2M", "per seeder; empty for none")
	fl.IntVar(&cfg.seeders, "seeders", 4, "how many")
	fl.StringVar(&cfg.seeder, "seeder", "aria2c", "aria2c, torrentfs or qbittorrent")
	if err := fl.Parse(args); err != nil {
		return err
	}
	sw, err := startSwarm(ctx, cfg)
	if err != nil {
		return err
	}
	defer sw.stop()
	fmt.Fprintln(os.Stderr, "swarm ready; Ctrl-C stops it")
	<-ctx.Done()
	return nil
}

// transmissionSeederConfig writes a Transmission 3.00 config dir for a seeder on ip:port
// uploading at most limit bytes per second (0: no limit), with DHT, PEX, LPD, uTP and port
// mapping off.
func transmissionSeederConfig(dir, dataDir, ip string, port int, limit int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kbps := (limit + 999) / 1000 // its speed unit is kB/s (1000 bytes)
	settings := fmt.Sprintf(`{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
 "utp-enabled": false, "port-forwarding-enabled": false, "rpc-enabled": false,
 "bind-address-ipv4": %q, "peer-port": %d, "peer-port-random-on-start": false,
 "encryption": 0, "speed-limit-up-enabled": %t, "speed-limit-up": %d,
 "speed-limit-down-enabled": false, "alt-speed-enabled": false, "ratio-limit-enabled": false,
 "idle-seeding-limit-enabled": false, "download-dir": %q, "incomplete-dir-enabled": false,
 "start-added-torrents": true, "message-level": 1}`, ip, port, limit > 0, kbps, dataDir)
	return os.WriteFile(filepath.Join(dir, "settings.json"), []byte(settings), 0o644)
}
