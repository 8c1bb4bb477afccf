package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"torrentfs/metainfo"
)

// runSeed: what serving costs a seeder, torrentfs seed vs aria2c. One seeder of one file
// (started afresh for each row, with our tracker, which only tells when it is ready) and
// N downloaders at once, each `torrentfs get` on its own loopback address, given the
// seeder with --peer and nothing else (no trackers, DHT, LSD or PEX): every byte they get
// comes from the seeder, so it uploads N copies. The seeder's CPU (user+sys from /proc)
// over the row, from the downloaders' start to the last one's exit, per GiB of those N
// copies is the figure; every download is checked by SHA-256. --rate limits each
// downloader (--download-limit), for the per-message costs of many slow peers.
func runSeed(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("seed", flag.ContinueOnError)
	bin := fl.String("torrentfs", ".bench/torrentfs", "torrentfs binary")
	torrent := fl.String("torrent", "", "the torrent (single file)")
	data := fl.String("data", "", "the torrent's file, for the seeder")
	work := fl.String("work", ".bench/seed/run", "scratch directory")
	rounds := fl.Int("rounds", 2, "rounds (each runs every seeder once)")
	trackerAddr := fl.String("tracker", "127.0.0.1:6969", "tracker address the torrent announces to")
	results := fl.String("results", ".bench/results.jsonl", "JSON lines appended here")
	timeout := fl.Duration("timeout", 10*time.Minute, "per row")
	peers := fl.Int("peers", 8, "downloaders")
	rate := fl.String("rate", "", "each downloader's --download-limit, e.g. 2M; empty for none")
	seeders := fl.String("seeders", "torrentfs,aria2c", "comma-separated seeders to compare")
	cpuProfile := fl.String("cpuprofile", "", "directory: each torrentfs seeder writes a CPU profile there (seed-ROUND.pprof)")
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
	rec, closeRec, err := newRecorder("seed", *results)
	if err != nil {
		return err
	}
	defer closeRec()
	if err := os.RemoveAll(*work); err != nil {
		return err
	}
	if *cpuProfile != "" {
		if err := os.MkdirAll(*cpuProfile, 0o755); err != nil {
			return err
		}
	}
	limit := "unthrottled"
	if *rate != "" {
		limit = *rate + "/s each"
	}
	fmt.Fprintf(os.Stderr, "seed: %s (%d MiB, %d KiB pieces) to %d downloaders (torrentfs get, %s), %d rounds\n",
		mi.Info.Name, mi.Info.TotalLength>>20, mi.Info.PieceLength>>10, *peers, limit, *rounds)

	clients := strings.Split(*seeders, ",")
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
			row := seedRow{bin: *bin, mi: mi, torrent: *torrent, data: *data, seeder: c, round: r,
				work: filepath.Join(*work, fmt.Sprintf("%s-%d", c, r)), tracker: *trackerAddr,
				peers: *peers, rate: *rate, timeout: *timeout}
			if *cpuProfile != "" && c == "torrentfs" {
				row.profile = filepath.Join(*cpuProfile, fmt.Sprintf("seed-%d.pprof", r))
			}
			res, err := row.run(ctx, want)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", c, r, err)
			}
			gib := float64(*peers) * float64(mi.Info.TotalLength) / (1 << 30)
			rec.add(sample{Client: c, Metric: "seeder_cpu_per_gib", Rep: r, Value: res.seederCPU / gib, Unit: "s/GiB"})
			rec.add(sample{Client: c, Metric: "throughput", Rep: r, Value: gib * 1024 / res.wall, Unit: "MiB/s"})
			rec.add(sample{Client: c, Metric: "wall", Rep: r, Value: res.wall, Unit: "s"})
			rec.add(sample{Client: c, Metric: "downloaders_cpu_per_gib", Rep: r, Value: res.leechCPU / gib, Unit: "s/GiB"})
			rec.add(sample{Client: c, Metric: "seeder_peak_rss", Rep: r, Value: float64(res.seederRSS) / (1 << 20), Unit: "MiB"})
		}
	}
	sums := summarize(rec.samples)
	fmt.Println()
	printTable(os.Stdout, sums)
	if ariaMed, ok := statOf(sums, "aria2c", "seeder_cpu_per_gib", "", "median"); ok {
		checkTargets(os.Stdout, sums, []target{
			{client: "torrentfs", metric: "seeder_cpu_per_gib", stat: "median", op: "<=", limit: ariaMed, what: "seeder CPU per GiB ≤ aria2c's median"},
		})
	}
	return nil
}

// seedRow is one seeder serving every downloader once.
type seedRow struct {
	bin, torrent, data, seeder, work, tracker, rate, profile string
	mi                                                       *metainfo.MetaInfo
	round, peers                                             int
	timeout                                                  time.Duration
}

type seedResult struct {
	wall, seederCPU, leechCPU float64
	seederRSS                 int64
}

// seederPort is where the seeder listens, on 127.0.0.11; downloader i is on 127.0.0.(20+i).
const seederPort = 6881

func (row *seedRow) run(ctx context.Context, want string) (seedResult, error) {
	var res seedResult
	cfg := swarmConfig{torrentfs: row.bin, trackerAddr: row.tracker, torrent: row.torrent, data: row.data,
		work: row.work, seeders: 1, seeder: row.seeder, portBase: seederPort - 1}
	if row.seeder == "torrentfs" {
		cfg.seederArgs = []string{"--no-pex"}
		if row.profile != "" {
			cfg.seederArgs = append(cfg.seederArgs, "--cpuprofile", row.profile)
		}
	}
	sw, err := startSwarm(ctx, cfg)
	if err != nil {
		return res, err
	}
	defer sw.stop()
	seeder := sw.procs[len(sw.procs)-1]
	logs := filepath.Join(row.work, "logs")
	cpu0 := procCPU(seeder.pid())
	t0 := time.Now()
	var leechers []*proc
	defer func() {
		for _, p := range leechers {
			p.stop(5 * time.Second)
		}
	}()
	for i := 1; i <= row.peers; i++ {
		argv := []string{row.bin, "get", "--no-dht", "--no-lsd", "--no-port-map", "--no-trackers", "--no-pex",
			"--peer", fmt.Sprintf("127.0.0.11:%d", seederPort), "--listen", fmt.Sprintf("127.0.0.%d:7200", 20+i),
			"--out", filepath.Join(row.work, fmt.Sprintf("dl%d", i))}
		if row.rate != "" {
			argv = append(argv, "--download-limit", row.rate)
		}
		p, err := start(fmt.Sprintf("dl%d", i), filepath.Join(logs, fmt.Sprintf("dl%d.log", i)), append(argv, row.torrent)...)
		if err != nil {
			return res, err
		}
		leechers = append(leechers, p)
	}
	wctx, cancel := context.WithTimeout(ctx, row.timeout)
	defer cancel()
	for _, p := range leechers {
		if err := p.wait(wctx); err != nil {
			return res, fmt.Errorf("%s: %v (log in %s)", p.name, err, logs)
		}
	}
	res.wall = time.Since(t0).Seconds()
	res.seederCPU = procCPU(seeder.pid()) - cpu0
	res.seederRSS = hwm(seeder.pid())
	for _, p := range leechers {
		cpu, _ := p.usage()
		res.leechCPU += cpu
	}
	for i := 1; i <= row.peers; i++ {
		dir := filepath.Join(row.work, fmt.Sprintf("dl%d", i))
		got, err := sha256File(filepath.Join(dir, row.mi.Info.Name))
		if err != nil || got != want {
			return res, fmt.Errorf("downloader %d: the download differs from the original (%v)", i, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			return res, err
		}
	}
	return res, nil
}
