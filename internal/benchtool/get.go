package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"torrentfs/metainfo"
)

// runGet: download throughput of torrentfs get vs aria2c from unthrottled aria2c seeders.
// Rounds alternate the order (A B, then B A) so drift in the machine's load hits both.
func runGet(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("get", flag.ContinueOnError)
	bin := fl.String("torrentfs", ".bench/torrentfs", "torrentfs binary")
	torrent := fl.String("torrent", "", "the torrent (single file)")
	data := fl.String("data", "", "the torrent's file, for the seeders")
	work := fl.String("work", ".bench/get/run", "scratch directory")
	rounds := fl.Int("rounds", 2, "rounds (each runs both clients)")
	trackerAddr := fl.String("tracker", "127.0.0.1:6969", "tracker address the torrent announces to")
	results := fl.String("results", ".bench/results.jsonl", "JSON lines appended here")
	timeout := fl.Duration("timeout", 10*time.Minute, "per download")
	transport := fl.String("transport", "", "comma-separated transports to run torrentfs with, each as its own client (torrentfs-tcp: --no-utp, torrentfs-utp: --no-tcp); our own seeders then, as aria2c has no uTP")
	seeder := fl.String("seeder", "aria2c", "seeders: aria2c or torrentfs")
	uploadLimit := fl.String("upload-limit", "", "per seeder, e.g. 8M; empty for none")
	cpuProfile := fl.String("cpuprofile", "", "directory: each torrentfs run writes a CPU profile there (CLIENT-ROUND.pprof)")
	encryption := fl.String("encryption", "", "comma-separated --encryption modes to run torrentfs with, each as its own client (torrentfs-off, torrentfs-require, ...); empty: the default only")
	if err := fl.Parse(args); err != nil {
		return err
	}
	mi, err := metainfo.Load(*torrent)
	if err != nil {
		return err
	}
	want, err := sha256File(*data)
	if err != nil {
		return err
	}
	rec, closeRec, err := newRecorder("get", *results)
	if err != nil {
		return err
	}
	defer closeRec()
	if err := os.RemoveAll(*work); err != nil {
		return err
	}
	if *transport != "" {
		*seeder = "torrentfs"
	}
	sw, err := startSwarm(ctx, swarmConfig{torrentfs: *bin, trackerAddr: *trackerAddr, torrent: *torrent,
		data: *data, work: *work, seeders: 4, seeder: *seeder, uploadLimit: *uploadLimit})
	if err != nil {
		return err
	}
	defer sw.stop()
	limit := "unthrottled"
	if *uploadLimit != "" {
		limit = *uploadLimit + "/s"
	}
	fmt.Fprintf(os.Stderr, "get: %s (%d MiB, %d KiB pieces), 4 %s %s seeders, %d rounds\n",
		mi.Info.Name, mi.Info.TotalLength>>20, mi.Info.PieceLength>>10, limit, *seeder, *rounds)

	clients := []string{"torrentfs", "aria2c"}
	if *encryption != "" {
		clients = []string{"aria2c"}
		for _, m := range strings.Split(*encryption, ",") {
			clients = append(clients, "torrentfs-"+m)
		}
	}
	if *transport != "" {
		clients = nil // aria2c has no uTP, and our seeders are not on the tracker's list
		for _, tr := range strings.Split(*transport, ",") {
			clients = append(clients, "torrentfs-"+tr)
		}
	}
	for r := 1; r <= *rounds; r++ {
		order := clients
		if r%2 == 0 {
			order = slices.Clone(clients)
			slices.Reverse(order)
		}
		for _, c := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			dir := filepath.Join(*work, fmt.Sprintf("dl-%s-%d", c, r))
			var argv []string
			switch {
			case strings.HasPrefix(c, "torrentfs"):
				argv = []string{*bin, "get", "--no-dht", "--no-lsd", "--no-port-map", "--out", dir, "--listen", "127.0.0.1:7100"}
				switch m, ok := strings.CutPrefix(c, "torrentfs-"); {
				case !ok:
				case m == "tcp":
					argv = append(argv, "--no-utp")
				case m == "utp":
					argv = append(argv, "--no-tcp")
				default:
					argv = append(argv, "--encryption", m)
				}
				if *seeder == "torrentfs" {
					// Our seeders announce from 127.0.0.1, not the addresses they listen on.
					for i := 1; i <= 4; i++ {
						argv = append(argv, "--peer", fmt.Sprintf("127.0.0.%d:%d", 10+i, 6880+i))
					}
				}
				if *cpuProfile != "" {
					if err := os.MkdirAll(*cpuProfile, 0o755); err != nil {
						return err
					}
					argv = append(argv, "--cpuprofile", filepath.Join(*cpuProfile, fmt.Sprintf("%s-%d.pprof", c, r)))
				}
				argv = append(argv, *torrent)
			case c == "aria2c":
				argv = []string{"aria2c", "--dir=" + dir, "--seed-time=0", "--enable-dht=false",
					"--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
					"--listen-port=7101", "--console-log-level=warn", "--summary-interval=0",
					"--file-allocation=falloc", *torrent}
			}
			seedCPU0 := sw.cpu()
			t0 := time.Now()
			p, err := start(c, filepath.Join(*work, "logs", fmt.Sprintf("%s-%d.log", c, r)), argv...)
			if err != nil {
				return err
			}
			wctx, cancel := context.WithTimeout(ctx, *timeout)
			err = p.wait(wctx)
			cancel()
			wall := time.Since(t0).Seconds()
			if !p.exited() {
				p.stop(5 * time.Second)
				return fmt.Errorf("%s round %d: %v (log in %s/logs)", c, r, err, *work)
			}
			if err != nil {
				return fmt.Errorf("%s round %d: %v (log in %s/logs)", c, r, err, *work)
			}
			cpu, rss := p.usage()
			seedCPU := sw.cpu() - seedCPU0
			got, err := sha256File(filepath.Join(dir, mi.Info.Name))
			note := ""
			if err != nil || got != want {
				note = "SHA-256 MISMATCH"
			}
			gib := float64(mi.Info.TotalLength) / (1 << 30)
			rec.add(sample{Client: c, Metric: "throughput", Rep: r, Value: float64(mi.Info.TotalLength) / (1 << 20) / wall, Unit: "MiB/s", Note: note})
			rec.add(sample{Client: c, Metric: "wall", Rep: r, Value: wall, Unit: "s"})
			rec.add(sample{Client: c, Metric: "cpu_per_gib", Rep: r, Value: cpu / gib, Unit: "s/GiB"})
			rec.add(sample{Client: c, Metric: "seeders_cpu_per_gib", Rep: r, Value: seedCPU / gib, Unit: "s/GiB"})
			rec.add(sample{Client: c, Metric: "peak_rss", Rep: r, Value: float64(rss) / (1 << 20), Unit: "MiB"})
			if note != "" {
				return fmt.Errorf("%s round %d: downloaded data differs from the original", c, r)
			}
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
		}
	}
	sums := summarize(rec.samples)
	fmt.Println()
	printTable(os.Stdout, sums)
	ariaMed, _ := statOf(sums, "aria2c", "throughput", "", "median")
	checkTargets(os.Stdout, sums, []target{
		{client: "torrentfs", metric: "throughput", stat: "median", op: ">=", limit: ariaMed, what: "throughput ≥ aria2c's median"},
		{client: "torrentfs", metric: "peak_rss", stat: "max", op: "<=", limit: 64, what: "peak RSS < 64 MiB"},
	})
	return nil
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
