package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"torrentfs/metainfo"
)

// The stream lab: what a viewer feels reading from a torrent mount while the swarm uploads
// at most 8 MiB/s (four seeders at 2 MiB/s), for torrentfs mount and btfs. Every
// measurement starts from a fresh mount with an empty cache; clients alternate A B, B A.
// With --http, torrentfs is measured a second time through its HTTP endpoint (client
// torrentfs-http: mount --http, the same probes reading the stream URL), and the report
// puts its medians beside the FUSE path's. With --wan the seeders are hosts of their own
// behind shaped, delayed links instead (wan.go).

const (
	swarmRate = 8 << 20 // bytes/s, the four seeders' upload limits together
	bigFile   = "random-128m.bin"
	// longFile is the long copy's file (step longcopy, WAN lab): 1 GiB in a torrent of its
	// own, labelled longLabel, whose content directory is longLabel too.
	longFile  = "random-1024m.bin"
	longLabel = "long"
	longMiB   = 1024
	videoFast = "video-faststart.mp4"
	videoTail = "video-tailindex.mp4"

	httpClient = "torrentfs-http"
	httpPort   = 7210 // of torrentfs mount --http, on the viewer's host
	// httpGoal is how far behind the FUSE path HTTP may be on any median (issue 11).
	httpGoal = 10 * time.Millisecond
)

type streamConfig struct {
	torrentfs, data, work, trackerAddr string
	torrents                           map[string]string // piece label -> .torrent
	clients                            []string
	reps, seeks                        int
	playSeconds                        float64
	only                               map[string]bool // measurement steps to run; empty: all
	mountArgs                          []string        // extra flags for torrentfs mount
	seeder                             string          // aria2c, qbittorrent, transmission or torrentfs
	longData                           string          // the long copy's content directory (longLabel), for its seeders
	uploadLimit                        string          // per seeder
	readTimeout                        time.Duration   // bounds a 64 KiB read from a fresh mount (first byte, seeks)
	settle                             time.Duration   // pause before each mount after the first
}

type lab struct {
	cfg     streamConfig
	rec     *recorder
	mi      map[string]*metainfo.MetaInfo
	mnt     string
	runs    int // mounts so far, for cache directory names
	rate    float64
	sha     string
	longSHA string  // SHA-256 of longFile, when the long copy is measured
	pairs   int     // measurement steps so far, for alternating the order of clients
	wan     *wanLab // the WAN lab's hosts; nil in the loopback lab
	// The current mount's log and start, when the client is torrentfs (through FUSE or
	// HTTP): its "first unchoke of the swarm" line times the seeders' choker.
	mountLog   string
	mountStart time.Time
}

// totalRate is what the seeders can upload together, bytes per second.
func (l *lab) totalRate() float64 {
	if l.wan != nil {
		return float64(wanSum(l.wan.seeders))
	}
	return swarmRate
}

// labels are the piece-size labels of the torrents measured, in the order they are measured.
func (l *lab) labels() []string {
	out := []string{"256K", "4M"}
	if l.cfg.torrents[piece4Mv2] != "" {
		out = append(out, piece4Mv2)
	}
	return out
}

// viewer is argv run on the viewer's host: as is in the loopback lab, in the viewer's
// network namespace in the WAN lab.
func (l *lab) viewer(argv ...string) []string {
	if l.wan == nil {
		return argv
	}
	return l.wan.viewer.Command(argv[0], argv[1:]...)
}

// viewerAddr is host:port on the viewer's host.
func (l *lab) viewerAddr(port int) string {
	ip := "127.0.0.1"
	if l.wan != nil {
		ip = l.wan.viewerIP()
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// seeded are the labels of the torrents the seeders serve: the measured ones, and the long
// copy's when that step runs.
func (l *lab) seeded() []string {
	out := l.labels()
	if l.cfg.torrents[longLabel] != "" {
		out = append(out, longLabel)
	}
	return out
}

// dataOf is the content directory of the torrent labelled label.
func (l *lab) dataOf(label string) string {
	if label == longLabel {
		return l.cfg.longData
	}
	return l.cfg.data
}

// fileOf is the file copied or probed in the torrent labelled label.
func fileOf(label string) string {
	if label == longLabel {
		return longFile
	}
	return bigFile
}

// piece4Mv2 labels the hybrid torrent with 4 MiB pieces: seeks of it are released block by
// block (BEP 52), so their latency should not depend on the piece size.
const piece4Mv2 = "4Mv2"

// localClient labels playback of the payload straight from local disk: the floor that
// ffmpeg's own start-up puts under every filesystem's, measured in the same minutes.
const localClient = "local"

func runStream(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("stream", flag.ContinueOnError)
	var cfg streamConfig
	fl.StringVar(&cfg.torrentfs, "torrentfs", ".bench/torrentfs", "torrentfs binary")
	fl.StringVar(&cfg.data, "data", ".bench/stream/payload", "the payload directory, for the seeders")
	t256 := fl.String("torrent256", "", "the payload's torrent with 256 KiB pieces")
	t4m := fl.String("torrent4m", "", "the payload's torrent with 4 MiB pieces")
	tLong := fl.String("torrent-long", "", "with --only longcopy: the long copy's torrent (one file of 1 GiB, 256 KiB pieces)")
	fl.StringVar(&cfg.longData, "data-long", "", "with --only longcopy: its content directory")
	t4mv2 := fl.String("torrent4mv2", "", "the payload's hybrid (BEP 52) torrent with 4 MiB pieces, for seeks read block by block; used with v2-capable seeders (torrentfs, qbittorrent)")
	fl.StringVar(&cfg.work, "work", ".bench/stream/run", "scratch directory")
	fl.StringVar(&cfg.trackerAddr, "tracker", "127.0.0.1:6969", "tracker address the torrents announce to")
	results := fl.String("results", ".bench/results.jsonl", "JSON lines appended here")
	quick := fl.Bool("quick", false, "one repetition, 4 seeks, 10 s of playback (about 3 minutes)")
	clients := fl.String("clients", "torrentfs,btfs", "filesystems under test, comma-separated")
	fl.IntVar(&cfg.reps, "reps", 2, "repetitions")
	fl.IntVar(&cfg.seeks, "seeks", 8, "seek offsets per piece size")
	fl.Float64Var(&cfg.playSeconds, "play", 30, "seconds of playback per video and of paced reading")
	fl.StringVar(&cfg.seeder, "seeder", "aria2c", "seeders: aria2c (the lab), qbittorrent (libtorrent, what most of a real swarm runs), transmission (3.00) or torrentfs (to take the seeders' pacing out)")
	fl.StringVar(&cfg.seeder, "seeders", "aria2c", "the same as --seeder")
	fl.StringVar(&cfg.uploadLimit, "upload-limit", "2M", "per seeder (the lab's 8 MiB/s is four at 2M); empty for none, for diagnosis")
	only := fl.String("only", "", "run only these steps, comma-separated: ttfb,seek,live,copy,play,paced; longcopy (WAN lab only, never run unless named) copies a file of 1 GiB, over which a connection's start costs what it costs in a real download")
	mountArgs := fl.String("mount-args", "", "extra flags for torrentfs mount, space-separated (e.g. \"--cache-size 64M\")")
	fl.DurationVar(&cfg.settle, "settle", time.Second, "pause before each mount after the first: a rate-limited libtorrent seeder hands out upload quota every 500 ms, and a mount made right after the last one's download found it spent")
	withHTTP := fl.Bool("http", false, "also measure torrentfs through mount --http (client "+httpClient+"), beside the FUSE path")
	wan := fl.Bool("wan", false, "seeders on hosts of their own behind shaped, delayed links (--wan-rates, --wan-rtts), qbittorrent unless --seeder says otherwise (issue 13)")
	wanRates := fl.String("wan-rates", "1M,2M,4M,8M", "with --wan: each seeder's uplink, bytes per second (K, M suffixes), comma-separated")
	wanRTTs := fl.String("wan-rtts", "20ms,50ms,100ms,200ms", "with --wan: each seeder's round-trip time to the viewer, paired with --wan-rates in order")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var seeders []wanSeeder
	if *wan {
		var err error
		if seeders, err = parseWANSeeders(*wanRates, *wanRTTs); err != nil {
			return err
		}
		if !flagSet(fl, "seeder") && !flagSet(fl, "seeders") {
			cfg.seeder = "qbittorrent"
		}
		if flagSet(fl, "upload-limit") {
			return fmt.Errorf("--wan: the links set the seeders' rates (--wan-rates); --upload-limit is for the loopback lab")
		}
		cfg.uploadLimit = ""
	}
	cfg.readTimeout = 10 * time.Second
	if *quick {
		cfg.reps, cfg.seeks, cfg.playSeconds, cfg.readTimeout = 1, 2, 10, 5*time.Second
	}
	if cfg.seeder == "transmission" {
		// Transmission unchokes on its own 10 s clock: a read timed out before the
		// first unchoke says nothing of what the client does after it.
		cfg.readTimeout = 12 * time.Second
	}
	cfg.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			cfg.only[s] = true
		}
	}
	cfg.mountArgs = strings.Fields(*mountArgs)
	cfg.clients = strings.Split(*clients, ",")
	if *withHTTP && !slices.Contains(cfg.clients, httpClient) {
		cfg.clients = append(cfg.clients, httpClient)
	}
	cfg.torrents = map[string]string{"256K": *t256, "4M": *t4m}
	if *t4mv2 != "" && (cfg.seeder == "torrentfs" || cfg.seeder == "qbittorrent") {
		cfg.torrents[piece4Mv2] = *t4mv2
	}
	if cfg.only["longcopy"] {
		if !*wan {
			return fmt.Errorf("longcopy is a step of the WAN lab (--wan)")
		}
		if *tLong == "" || cfg.longData == "" {
			return fmt.Errorf("longcopy needs --torrent-long and --data-long")
		}
		cfg.torrents[longLabel] = *tLong
	}
	l := &lab{cfg: cfg, mi: map[string]*metainfo.MetaInfo{}, mnt: filepath.Join(cfg.work, "mnt")}
	for label, path := range cfg.torrents {
		mi, err := metainfo.Load(path)
		if err != nil {
			return err
		}
		l.mi[label] = mi
	}
	st, err := os.Stat(filepath.Join(cfg.data, videoFast))
	if err != nil {
		return err
	}
	l.rate = float64(st.Size()) / 120 // the videos are 2 minutes long
	if l.sha, err = sha256File(filepath.Join(cfg.data, bigFile)); err != nil {
		return err
	}
	if cfg.torrents[longLabel] != "" {
		if l.longSHA, err = sha256File(filepath.Join(cfg.longData, longFile)); err != nil {
			return err
		}
	}
	bench := "stream"
	if *wan {
		bench = "stream-wan"
	}
	rec, closeRec, err := newRecorder(bench, *results)
	if err != nil {
		return err
	}
	defer closeRec()
	l.rec = rec
	rec.args = strings.Join(cfg.mountArgs, " ")
	switch {
	case *wan:
		rec.args += fmt.Sprintf(" (wan: %s seeders, %s)", cfg.seeder, describeWAN(seeders))
	case cfg.seeder != "aria2c" || cfg.uploadLimit != "2M":
		rec.args += fmt.Sprintf(" (seeders: %s, upload limit %q)", cfg.seeder, cfg.uploadLimit)
	}
	if isMounted(l.mnt) {
		return fmt.Errorf("%s is still mounted from an earlier run; fusermount3 -u -z it", l.mnt)
	}
	if err := os.RemoveAll(cfg.work); err != nil {
		return err
	}
	if err := os.MkdirAll(l.mnt, 0o755); err != nil {
		return err
	}
	if *wan {
		if l.wan, err = l.startWAN(ctx, seeders); err != nil {
			return err
		}
		defer l.wan.stop()
		fmt.Fprintf(os.Stderr, "stream --wan: %d %s seeders (%s), R = %s/s, farthest RTT %v; viewer %s on %s\n",
			len(seeders), cfg.seeder, describeWAN(seeders), humanRate(wanSum(seeders)), wanFarthest(seeders), l.wan.viewerIP(), l.wan.net.Bridge)
	} else {
		stop, err := l.startLoopback(ctx)
		if err != nil {
			return err
		}
		defer stop()
	}
	fmt.Fprintf(os.Stderr, "stream: clients %v, %s seeders, %d reps, %d seeks, %.0f s playback; video %.1f Mbit/s; mount args %q\n",
		cfg.clients, cfg.seeder, cfg.reps, cfg.seeks, cfg.playSeconds, l.rate*8/1e6, cfg.mountArgs)

	for rep := 1; rep <= cfg.reps; rep++ {
		if err := l.repetition(ctx, rep); err != nil {
			return err
		}
	}
	sums := summarize(rec.samples)
	fmt.Println()
	printTable(os.Stdout, sums)
	if *wan {
		units := map[string]int64{}
		for _, label := range l.labels() {
			units[label] = wanUnit(label, l.mi[label].Info.PieceLength)
		}
		fmt.Printf("\nGoals for R = %s/s (%s), farthest RTT %v:\n", humanRate(wanSum(seeders)), describeWAN(seeders), wanFarthest(seeders))
		var cs []string
		for _, c := range cfg.clients {
			if c != httpClient {
				cs = append(cs, c)
			}
		}
		printGoalsSideBySide(os.Stdout, sums, cs, func(c string) []target { return wanGoals(seeders, units, c, cfg.only["longcopy"]) })
		if slices.Contains(cfg.clients, httpClient) && slices.Contains(cfg.clients, "torrentfs") {
			fmt.Println()
			printComparison(os.Stdout, compare(sums, "torrentfs", httpClient, 128<<20, httpGoal), "FUSE", "HTTP")
		}
		return nil
	}
	ariaMed, ariaOK := statOf(sums, "aria2c", "copy", "256K", "median")
	fmt.Printf("\nGoals against %s seeders:\n", cfg.seeder)
	checkTargets(os.Stdout, sums, loopbackGoals(cfg.seeder, ariaMed, ariaOK))
	if slices.Contains(cfg.clients, httpClient) && slices.Contains(cfg.clients, "torrentfs") {
		fmt.Println()
		printComparison(os.Stdout, compare(sums, "torrentfs", httpClient, 128<<20, httpGoal), "FUSE", "HTTP")
	}
	return nil
}

// loopbackGoals are the loopback lab's goals against seeder: the stream lab's own against
// aria2c (and our own) seeders, issue 14's against qBittorrent and Transmission. ariaMed is
// plain aria2c's median copy rate when ariaOK (aria2c took part).
func loopbackGoals(seeder string, ariaMed float64, ariaOK bool) []target {
	// Both labs' goals for a viewer in a downloading mount.
	viewer := []target{
		{"torrentfs", "seek_live", "256K", "median", "<=", 0.05, "seek in a downloading mount, median ≤ 50 ms, 256 KiB pieces"},
		{"torrentfs", "seek_live", "256K", "max", "<=", 0.15, "seek in a downloading mount, max ≤ 150 ms, 256 KiB pieces"},
		{"torrentfs", "stalls_faststart", "256K", "max", "<=", 0, "no stalls, index first"},
		{"torrentfs", "stalls_tailindex", "256K", "max", "<=", 0, "no stalls, index last"},
		{"torrentfs", "paced_blocked", "256K", "max", "<=", 0, "paced reader never blocks > 0.5 s"},
	}
	var goals []target
	switch seeder {
	case "qbittorrent":
		goals = []target{
			{"torrentfs", "ttfb", "256K", "median", "<=", 0.05, "time to first byte ≤ 50 ms (median)"},
			// One 4 MiB piece at the seeders' 8 MiB/s is 0.5 s; the goal is within 10% of it.
			{"torrentfs", "seek_live", "4M", "max", "<=", 0.55, "seek in a downloading mount, max ≤ 0.55 s, 4 MiB pieces"},
			{"torrentfs", "startup_faststart", "256K", "max", "<=", 0.4, "video startup ≤ 0.4 s, index first"},
			{"torrentfs", "copy_frac", "256K", "median", ">=", 0.95, "sequential copy ≥ 95% of 8 MiB/s"},
		}
		goals = append(goals, viewer...)
	case "transmission":
		goals = []target{
			{"torrentfs", "ttfb_after_unchoke", "256K", "max", "<=", 1, "first byte within 1 s of the first unchoke (max)"},
			{"torrentfs", "seek_after_unchoke", "256K", "max", "<=", 1, "fresh-mount seek within 1 s of the first unchoke, 256 KiB pieces (max)"},
		}
	default:
		goals = []target{
			{"torrentfs", "ttfb", "256K", "median", "<=", 0.15, "time to first byte ≤ 0.15 s (median)"},
			{"torrentfs", "ttfb", "256K", "max", "<=", 0.15, "time to first byte ≤ 0.15 s (max)"},
			{"torrentfs", "seek", "256K", "median", "<=", 0.05, "seek median ≤ 50 ms, 256 KiB pieces"},
			{"torrentfs", "seek", "256K", "max", "<=", 0.15, "seek max ≤ 150 ms, 256 KiB pieces"},
			{"torrentfs", "seek", "4M", "median", "<=", 0.05, "seek median ≤ 50 ms, 4 MiB pieces"},
			{"torrentfs", "seek", "4M", "max", "<=", 0.15, "seek max ≤ 150 ms, 4 MiB pieces"},
			{"torrentfs", "seek", piece4Mv2, "max", "<=", 0.15, "seek max ≤ 150 ms, 4 MiB hybrid pieces read block by block (issue 12)"},
			{"torrentfs", "copy_frac", "256K", "median", ">=", 0.9, "sequential copy ≥ 90% of 8 MiB/s"},
			{"torrentfs", "startup_faststart", "256K", "max", "<=", 0.5, "video startup ≤ 0.5 s, index first"},
			{"torrentfs", "startup_tailindex", "256K", "max", "<=", 0.5, "video startup ≤ 0.5 s, index last"},
			{"torrentfs", "rss_stream", "256K", "max", "<=", 40, "peak RSS ≤ 40 MiB streaming"},
			{"torrentfs", "rss_copy", "256K", "max", "<=", 64, "peak RSS ≤ 64 MiB copying"},
		}
		goals = append(goals, viewer...)
	}
	if ariaOK {
		goals = append(goals, target{"torrentfs", "copy", "256K", "median", ">=", ariaMed, "sequential copy ≥ plain aria2c"})
	}
	return goals
}

// startLoopback starts the loopback lab's swarms: four seeders of each torrent on
// 127.0.0.11-14 and one tracker. stop stops them.
func (l *lab) startLoopback(ctx context.Context) (stop func(), err error) {
	cfg := l.cfg
	var sws []*swarm
	stop = func() {
		for i := len(sws) - 1; i >= 0; i-- {
			sws[i].stop()
		}
	}
	for i, label := range l.labels() {
		sw, err := startSwarm(ctx, swarmConfig{torrentfs: cfg.torrentfs, trackerAddr: cfg.trackerAddr,
			torrent: cfg.torrents[label], data: cfg.data, work: cfg.work, seeders: 4, uploadLimit: cfg.uploadLimit,
			label: "-" + label, portBase: 6880 + 10*i, noTracker: i > 0, seeder: cfg.seeder})
		if err != nil {
			stop()
			return nil, err
		}
		sws = append(sws, sw)
	}
	return stop, nil
}

// flagSet tells whether the flag called name was given on the command line.
func flagSet(fl *flag.FlagSet, name string) bool {
	set := false
	fl.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// order alternates the clients from one measurement step to the next (A B, B A, ...).
func (l *lab) order(extra ...string) []string {
	c := append(append([]string{}, l.cfg.clients...), extra...)
	l.pairs++
	if l.pairs%2 == 0 {
		for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
			c[i], c[j] = c[j], c[i]
		}
	}
	return c
}

// step tells whether the measurement step name is to run.
func (l *lab) step(name string) bool { return len(l.cfg.only) == 0 || l.cfg.only[name] }

func (l *lab) repetition(ctx context.Context, rep int) error {
	fmt.Fprintf(os.Stderr, "repetition %d\n", rep)
	big := int64(128 << 20)
	if err := l.repTTFB(ctx, rep); err != nil {
		return err
	}
	if l.step("seek") {
		if err := l.repSeek(ctx, rep, big); err != nil {
			return err
		}
	}
	if l.step("live") {
		if err := l.repSeekLive(ctx, rep, big); err != nil {
			return err
		}
	}
	if l.step("copy") {
		if err := l.repCopy(ctx, rep); err != nil {
			return err
		}
	}
	if l.cfg.only["longcopy"] {
		if err := l.repLongCopy(ctx, rep); err != nil {
			return err
		}
	}
	if l.step("play") {
		if err := l.repPlay(ctx, rep); err != nil {
			return err
		}
	}
	if l.step("paced") {
		return l.repPaced(ctx, rep)
	}
	return nil
}

func (l *lab) repTTFB(ctx context.Context, rep int) error {
	if !l.step("ttfb") {
		return nil
	}
	for _, c := range l.order() {
		if err := l.withMount(ctx, c, "256K", rep, func(dir string, pid int) error {
			return l.readAt(ctx, c, "ttfb", "256K", rep, dir+"/"+bigFile, 0, "")
		}); err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) repSeek(ctx context.Context, rep int, big int64) error {
	for _, piece := range l.labels() {
		for k := range l.cfg.seeks {
			off := seekOffset(k, big)
			for _, c := range l.order() {
				if err := l.withMount(ctx, c, piece, rep, func(dir string, pid int) error {
					return l.readAt(ctx, c, "seek", piece, rep, dir+"/"+bigFile, off, fmt.Sprintf("offset %d", off))
				}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// liveWarmup is how long a live-seek mount downloads in the background before its first
// seek, and liveGap the time between its seeks.
const (
	liveWarmup = 3 * time.Second
	liveGap    = time.Second
)

// repSeekLive seeks within one mount whose background download is under way, the case a
// viewer jumping around a video meets: every seeder is busy with our own background
// requests when the seek comes (issue 14). Offsets are cold: none of the fresh-mount ones.
func (l *lab) repSeekLive(ctx context.Context, rep int, big int64) error {
	for _, piece := range l.labels() {
		for _, c := range l.order() {
			if err := l.withMount(ctx, c, piece, rep, func(dir string, pid int) error {
				if err := sleepCtx(ctx, liveWarmup); err != nil {
					return err
				}
				for k := range l.cfg.seeks {
					off := seekOffset(1000+k, big)
					if err := l.readAt(ctx, c, "seek_live", piece, rep, dir+"/"+bigFile, off, fmt.Sprintf("offset %d", off)); err != nil {
						return err
					}
					if err := sleepCtx(ctx, liveGap); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *lab) repCopy(ctx context.Context, rep int) error {
	extra := []string{"aria2c"}
	if l.wan != nil {
		extra = append(extra, tcpClient)
	}
	for _, c := range l.order(extra...) {
		var err error
		switch c {
		case "aria2c":
			err = l.ariaCeiling(ctx, rep)
		case tcpClient:
			err = l.tcpCeiling(ctx, rep, "copy", 128)
		default:
			err = l.withMount(ctx, c, "256K", rep, func(dir string, pid int) error {
				return l.copy(ctx, c, rep, dir+"/"+bigFile, pid, "copy", 128, l.sha)
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// repLongCopy is the copy step over longFile (1 GiB), for the mounts and the tcp row
// (aria2c gets a fifth of R here: it would take minutes). A connection's start costs a
// fixed time: over a long copy it weighs what it weighs in a real download.
func (l *lab) repLongCopy(ctx context.Context, rep int) error {
	for _, c := range l.order(tcpClient) {
		var err error
		switch c {
		case tcpClient:
			err = l.tcpCeiling(ctx, rep, "copy_long", longMiB)
		case "aria2c":
		default:
			err = l.withMount(ctx, c, longLabel, rep, func(dir string, pid int) error {
				return l.copy(ctx, c, rep, dir+"/"+longFile, pid, "copy_long", longMiB, l.longSHA)
			})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *lab) repPlay(ctx context.Context, rep int) error {
	for _, v := range []struct{ file, tag string }{{videoFast, "faststart"}, {videoTail, "tailindex"}} {
		for _, c := range l.order(localClient) {
			if c == localClient {
				// The floor: ffmpeg's own start-up on this machine, the file on local disk.
				if err := l.play(ctx, c, rep, filepath.Join(l.cfg.data, v.file), v.tag, 0); err != nil {
					return err
				}
				continue
			}
			if err := l.withMount(ctx, c, "256K", rep, func(dir string, pid int) error {
				return l.play(ctx, c, rep, dir+"/"+v.file, v.tag, pid)
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *lab) repPaced(ctx context.Context, rep int) error {
	for _, c := range l.order() {
		if err := l.withMount(ctx, c, "256K", rep, func(dir string, pid int) error {
			return l.paced(ctx, c, rep, dir+"/"+videoFast, pid)
		}); err != nil {
			return err
		}
	}
	return nil
}

// seekOffset is the k-th fixed pseudo-random offset of a 64 KiB read within size bytes
// (a linear congruential sequence: the same offsets on every run and machine).
func seekOffset(k int, size int64) int64 {
	x := uint64(0x9E3779B97F4A7C15)
	for range k + 1 {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return int64(x>>11) % (size - 64<<10)
}

// withMount mounts the torrent of piece size piece with client, on an empty cache, records
// how long until its files are listed, runs fn on the directory holding them, and
// unmounts. Nothing stays mounted, whatever fn does. For httpClient the "directory" is the
// torrent's stream URL prefix (http://ADDR/stream/HASH/NAME) and listed means that the
// mount lists the big file and it answers a HEAD there.
func (l *lab) withMount(ctx context.Context, client, piece string, rep int, fn func(dir string, pid int) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.runs > 0 {
		if err := sleepCtx(ctx, l.cfg.settle); err != nil {
			return err
		}
	}
	l.runs++
	mi := l.mi[piece]
	cacheDir := filepath.Join(l.cfg.work, fmt.Sprintf("cache-%03d-%s", l.runs, client))
	logPath := filepath.Join(l.cfg.work, "logs", fmt.Sprintf("mount-%03d-%s.log", l.runs, client))
	// The payload is a multi-file torrent: its files are at MOUNTPOINT/<name>/<path>.
	dir := filepath.Join(l.mnt, mi.Info.Name)
	listed := func() bool { return hasFile(dir, fileOf(piece)) }
	var argv []string
	switch client {
	case "torrentfs":
		argv = l.torrentfsArgv(piece, cacheDir)
	case httpClient:
		addr := l.viewerAddr(httpPort)
		argv = l.torrentfsArgv(piece, cacheDir, "--http", addr)
		// The same process mounts the files too: its clock starts when both are up, so
		// FUSE and HTTP measurements begin at the same point of its start-up (a HEAD
		// answers some 20 ms before the mount lists the files, while the peers are still
		// being greeted, and a seek timed from there paid for their greeting).
		fuseDir := dir
		dir = streamURL(addr, mi)
		listed = func() bool { return hasFile(fuseDir, fileOf(piece)) && headOK(ctx, dir+"/"+fileOf(piece)) }
	case "btfs":
		argv = []string{"btfs", "-f", "--data-directory=" + cacheDir, "--min-port=7201", "--max-port=7201",
			l.cfg.torrents[piece], l.mnt}
	default:
		return fmt.Errorf("unknown client %q", client)
	}
	t0 := time.Now()
	p, err := start(client, logPath, l.viewer(argv...)...)
	if err != nil {
		return err
	}
	l.mountLog, l.mountStart = "", t0
	if strings.HasPrefix(client, "torrentfs") {
		l.mountLog = logPath
	}
	defer func() {
		p.stop(5 * time.Second)
		if isMounted(l.mnt) {
			_ = exec.Command("fusermount3", "-u", "-z", l.mnt).Run()
		}
		os.RemoveAll(cacheDir)
	}()
	err = poll(ctx, 30*time.Second, 5*time.Millisecond, func() bool { return p.exited() || listed() })
	if p.exited() {
		return fmt.Errorf("%s mount exited: %v (log %s)", client, p.err, logPath)
	}
	if err != nil {
		return fmt.Errorf("%s mount: files not listed: %w (log %s)", client, err, logPath)
	}
	l.rec.add(sample{Client: client, Metric: "mount_ready", Piece: piece, Rep: rep, Value: time.Since(t0).Seconds(), Unit: "s"})
	return fn(dir, p.pid())
}

// torrentfsArgv is the torrentfs mount command line for the torrent of piece size piece,
// with extra flags before the torrent.
func (l *lab) torrentfsArgv(piece, cacheDir string, extra ...string) []string {
	argv := append([]string{l.cfg.torrentfs, "mount", "--no-dht", "--no-lsd", "--no-port-map", "--cache-dir", cacheDir, "--listen", l.viewerAddr(7200)}, l.cfg.mountArgs...)
	argv = append(argv, extra...)
	if l.cfg.seeder == "torrentfs" && l.wan == nil {
		// Our seeders announce from 127.0.0.1, not the address they listen on, so the
		// tracker's list is no use: name them.
		base := map[string]int{"256K": 6880, "4M": 6890, piece4Mv2: 6900}[piece]
		for i := 1; i <= 4; i++ {
			argv = append(argv, "--peer", fmt.Sprintf("127.0.0.%d:%d", 10+i, base+i))
		}
	}
	return append(argv, l.cfg.torrents[piece], l.mnt)
}

// hasFile tells whether dir lists a file called name.
func hasFile(dir, name string) bool {
	names, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, n := range names {
		if n.Name() == name {
			return true
		}
	}
	return false
}

// streamURL is where torrentfs's HTTP server at addr serves the files of mi: a file's URL
// is this plus "/" and its path inside the torrent.
func streamURL(addr string, mi *metainfo.MetaInfo) string {
	return "http://" + addr + "/stream/" + mi.InfoHash.HexString() + "/" + url.PathEscape(mi.Info.Name)
}

// headOK tells whether a HEAD of u answers 200 within a second.
func headOK(ctx context.Context, u string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (l *lab) readAt(ctx context.Context, client, metric, piece string, rep int, path string, off int64, note string) error {
	readTimeout := l.cfg.readTimeout
	readStart := time.Now()
	out, err := runProbe(ctx, readTimeout, "readat", path, strconv.FormatInt(off, 10), "65536")
	readEnd := time.Now()
	if errors.Is(err, errTimeout) {
		// A viewer has given up by then; the figure is a lower bound.
		l.rec.add(sample{Client: client, Metric: metric, Piece: piece, Rep: rep, Value: readTimeout.Seconds(), Unit: "s", Note: "timed out; " + note})
		l.unchokeSamples(client, metric, piece, rep, readStart, readEnd, -1)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", client, metric, err)
	}
	v, first, err := parseReadAt(out)
	if err != nil {
		return fmt.Errorf("%s %s: %w", client, metric, err)
	}
	if first >= 0 {
		// Over HTTP the figure is still the whole 64 KiB, as over FUSE; the first body
		// byte goes in the note.
		note = strings.TrimPrefix(note+fmt.Sprintf("; first body byte %s", fmtValue(first, "s")), "; ")
	}
	l.rec.add(sample{Client: client, Metric: metric, Piece: piece, Rep: rep, Value: v, Unit: "s", Note: note})
	l.unchokeSamples(client, metric, piece, rep, readStart, readEnd, v)
	return nil
}

// unchokeSamples records, for a read of a fresh torrentfs mount that took v seconds
// (negative: timed out) between readStart and readEnd, when the mount's first unchoke
// came (metric_unchoke, from the mount's start) and how long the read took after it
// (metric_after_unchoke: all of v if the unchoke came before the read began). Against a
// seeder that unchokes on its own clock the read's time is mostly that wait; what the
// client does with an unchoke is the second figure (issue 14).
func (l *lab) unchokeSamples(client, metric, piece string, rep int, readStart, readEnd time.Time, v float64) {
	if l.mountLog == "" || (metric != "ttfb" && metric != "seek") {
		return // a live seek's mount was unchoked long before
	}
	at, ok := firstUnchokeAt(l.mountLog)
	if !ok || at.After(readEnd) {
		l.rec.add(sample{Client: client, Metric: metric + "_unchoke", Piece: piece, Rep: rep,
			Value: readEnd.Sub(l.mountStart).Seconds(), Unit: "s", Note: "no unchoke by the read's end"})
		return
	}
	l.rec.add(sample{Client: client, Metric: metric + "_unchoke", Piece: piece, Rep: rep, Value: at.Sub(l.mountStart).Seconds(), Unit: "s"})
	if v < 0 {
		l.rec.add(sample{Client: client, Metric: metric + "_after_unchoke", Piece: piece, Rep: rep,
			Value: readEnd.Sub(at).Seconds(), Unit: "s", Note: "timed out"})
		return
	}
	after := v
	if at.After(readStart) {
		after = min(v, readEnd.Sub(at).Seconds())
	}
	l.rec.add(sample{Client: client, Metric: metric + "_after_unchoke", Piece: piece, Rep: rep, Value: after, Unit: "s"})
}

// unchokeLine is what a torrentfs mount logs (at info level) when a peer first unchokes it.
const unchokeLine = `msg="first unchoke of the swarm"`

// firstUnchokeAt reads the time of the first unchokeLine in the mount log at path.
func firstUnchokeAt(path string) (time.Time, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, false
	}
	return parseFirstUnchoke(string(b))
}

// parseFirstUnchoke finds the first unchokeLine in a logrus text log and its time="..." field.
func parseFirstUnchoke(log string) (time.Time, bool) {
	for line := range strings.Lines(log) {
		if !strings.Contains(line, unchokeLine) {
			continue
		}
		_, rest, ok := strings.Cut(line, `time="`)
		if !ok {
			continue
		}
		stamp, _, ok := strings.Cut(rest, `"`)
		if !ok {
			continue
		}
		if at, err := time.Parse(time.RFC3339Nano, stamp); err == nil {
			return at, true
		}
	}
	return time.Time{}, false
}

// parseReadAt reads the readat probe's answer: seconds until the whole read was in, then,
// for a URL, seconds until the first body byte (-1 when absent).
func parseReadAt(out string) (done, first float64, err error) {
	f := strings.Fields(out)
	first = -1
	if len(f) < 1 || len(f) > 2 {
		return 0, 0, fmt.Errorf("readat probe said %q", out)
	}
	vals := make([]float64, len(f))
	for i, s := range f {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, 0, fmt.Errorf("readat probe said %q", out)
		}
		vals[i] = v
	}
	if len(vals) == 2 {
		first = vals[1]
	}
	return vals[0], first, nil
}

// copy reads the file at path (mib MiB, SHA-256 sum) through client's mount and records
// metric (MiB/s), metric_frac (of R) and rss_metric.
func (l *lab) copy(ctx context.Context, client string, rep int, path string, pid int, metric string, mib int, sum string) error {
	links := l.links()
	t0 := time.Now()
	var out string
	var err error
	if isURL(path) {
		out, err = runProbe(ctx, 180*time.Second, "fetch", path)
	} else {
		out, err = runCmd(ctx, 180*time.Second*time.Duration(mib/128), "sh", "-c", `dd if="$1" bs=1M status=none | sha256sum`, "sh", path)
	}
	secs := time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("%s copy: %w", client, err)
	}
	note := ""
	if f := strings.Fields(out); len(f) == 0 || f[0] != sum {
		note = "SHA-256 MISMATCH"
	}
	mibs := float64(mib) / secs
	l.rec.add(sample{Client: client, Metric: metric, Piece: "256K", Rep: rep, Value: mibs, Unit: "MiB/s", Note: note})
	l.rec.add(sample{Client: client, Metric: metric + "_frac", Piece: "256K", Rep: rep, Value: mibs / (l.totalRate() / (1 << 20)), Unit: "frac", Note: l.linkNote(links, secs)})
	l.rec.add(sample{Client: client, Metric: "rss_" + metric, Piece: "256K", Rep: rep, Value: float64(hwm(pid)) / (1 << 20), Unit: "MiB"})
	if note != "" {
		return fmt.Errorf("%s copy: data read from the mount differs from the original", client)
	}
	return nil
}

// ariaCeiling: plain aria2c downloading only the big file from the same swarm, the
// throughput a dedicated downloader gets.
func (l *lab) ariaCeiling(ctx context.Context, rep int) error {
	idx, err := ariaIndex(ctx, l.cfg.torrents["256K"], bigFile)
	if err != nil {
		return err
	}
	dir := filepath.Join(l.cfg.work, fmt.Sprintf("aria2c-%d", rep))
	defer os.RemoveAll(dir)
	links := l.links()
	t0 := time.Now()
	_, err = runCmd(ctx, 180*time.Second, l.viewer("aria2c", "--dir="+dir, "--seed-time=0", "--enable-dht=false",
		"--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false", "--listen-port=7202",
		"--console-log-level=warn", "--summary-interval=0", "--select-file="+idx, l.cfg.torrents["256K"])...)
	secs := time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("aria2c ceiling: %w", err)
	}
	got, err := sha256File(filepath.Join(dir, l.mi["256K"].Info.Name, bigFile))
	note := ""
	if err != nil || got != l.sha {
		note = "SHA-256 MISMATCH"
	}
	mibs := 128 / secs
	l.rec.add(sample{Client: "aria2c", Metric: "copy", Piece: "256K", Rep: rep, Value: mibs, Unit: "MiB/s", Note: note})
	l.rec.add(sample{Client: "aria2c", Metric: "copy_frac", Piece: "256K", Rep: rep, Value: mibs / (l.totalRate() / (1 << 20)), Unit: "frac", Note: l.linkNote(links, secs)})
	return nil
}

// ariaIndex is aria2c's 1-based index of the file named name in the torrent, read from
// aria2c -S so that aria2c's own view of the file list (pad files and all) is used.
func ariaIndex(ctx context.Context, torrent, name string) (string, error) {
	out, err := runCmd(ctx, 30*time.Second, "aria2c", "-S", torrent)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		idx, path, ok := strings.Cut(strings.TrimSpace(line), "|")
		if ok && strings.HasSuffix(path, "/"+name) {
			return strings.TrimSpace(idx), nil
		}
	}
	return "", fmt.Errorf("aria2c -S %s does not list %s", torrent, name)
}

func (l *lab) play(ctx context.Context, client string, rep int, path, tag string, pid int) error {
	secs := l.cfg.playSeconds
	out, err := runProbe(ctx, time.Duration(secs+60)*time.Second, "play", path, strconv.FormatFloat(secs, 'f', -1, 64))
	var st playStats
	if err == nil {
		err = json.Unmarshal([]byte(out), &st)
	}
	if err != nil {
		// A player that never starts is a result, not a reason to stop the lab.
		fmt.Fprintf(os.Stderr, "  %s play %s: %v\n", client, tag, err)
		st.Startup, st.Stalls = -1, -1
	}
	startup := st.Startup
	note := ""
	if startup < 0 {
		startup, note = secs+60, "never started"
	}
	l.rec.add(sample{Client: client, Metric: "startup_" + tag, Piece: "256K", Rep: rep, Value: startup, Unit: "s", Note: note})
	l.rec.add(sample{Client: client, Metric: "stalls_" + tag, Piece: "256K", Rep: rep, Value: float64(max(st.Stalls, 0)), Unit: "count",
		Note: fmt.Sprintf("longest gap %.2f s, %.1f s played", st.MaxGap, st.Media)})
	if pid != 0 {
		l.rec.add(sample{Client: client, Metric: "rss_stream", Piece: "256K", Rep: rep, Value: float64(hwm(pid)) / (1 << 20), Unit: "MiB", Note: tag})
	}
	return nil
}

func (l *lab) paced(ctx context.Context, client string, rep int, path string, pid int) error {
	secs := l.cfg.playSeconds
	out, err := runProbe(ctx, time.Duration(secs+60)*time.Second, "paced", path,
		strconv.FormatFloat(l.rate, 'f', 0, 64), strconv.FormatFloat(secs, 'f', -1, 64))
	var res pacedResult
	if err == nil {
		err = json.Unmarshal([]byte(out), &res)
	}
	if err != nil {
		return fmt.Errorf("%s paced: %w", client, err)
	}
	l.rec.add(sample{Client: client, Metric: "paced_startup", Piece: "256K", Rep: rep, Value: res.Startup, Unit: "s"})
	l.rec.add(sample{Client: client, Metric: "paced_blocked", Piece: "256K", Rep: rep, Value: float64(res.Blocked), Unit: "count",
		Note: fmt.Sprintf("longest read %.2f s of %d", res.MaxRead, res.Reads)})
	l.rec.add(sample{Client: client, Metric: "rss_stream", Piece: "256K", Rep: rep, Value: float64(hwm(pid)) / (1 << 20), Unit: "MiB", Note: "paced"})
	return nil
}

// isMounted tells whether dir (made absolute) is a mount point in /proc/mounts.
func isMounted(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == abs {
			return true
		}
	}
	return false
}
