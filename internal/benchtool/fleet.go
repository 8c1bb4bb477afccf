package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/metainfo"
	"torrentfs/tracker"
)

// runFleet is scripts/bench fleet: one origin host and N node hosts, every host's uplink
// shaped to --rate (tbf) and delayed by --delay each way (so 2×delay between any two
// hosts), all network namespaces on a bridge inside the jail. One image on the origin;
// every node must end with a verified copy. A row is one way of getting it there: a
// BitTorrent client on every host (torrentfs, aria2c, Transmission; nodes keep seeding
// after they complete), every node fetching it from nginx on the origin (http), or ours
// with the origin's nginx as a web seed instead of a BitTorrent seeder (webseed). A row
// measures the time until every node has it (max and median over the nodes), and what the
// origin and the nodes sent, counted on the bridge side of each host's veth (the bytes a
// host sends, whatever the client: TCP/IP headers included).
// fleetRows are the fleet lab's rows, in the order they run by default.
var fleetRows = []string{"torrentfs", "torrentfs-spread", "aria2c", "transmission", "http", "webseed"}

func runFleet(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("fleet", flag.ContinueOnError)
	var c fleetConfig
	fl.StringVar(&c.bin, "torrentfs", ".bench/torrentfs", "torrentfs binary")
	fl.StringVar(&c.work, "work", ".bench/fleet", "scratch directory")
	results := fl.String("results", ".bench/results.jsonl", "JSON lines of samples are appended here")
	nodes := fl.String("nodes", "8,16", "comma-separated node counts, a lab for each")
	rate := fl.String("rate", "2M", "every host's uplink, bytes per second (K, M suffixes)")
	size := fl.String("size", "64M", "the image's size (K, M suffixes)")
	piece := fl.String("piece-size", "256K", "the torrent's piece size")
	fl.DurationVar(&c.delay, "delay", 20*time.Millisecond, "one-way delay on every host's uplink")
	clients := fl.String("clients", strings.Join(fleetRows, ","), "comma-separated rows: torrentfs, torrentfs-spread (the origin runs seed --spread), aria2c, transmission, http, webseed")
	rounds := fl.Int("rounds", 1, "runs of each row")
	nodeArgs := fl.String("node-args", "", "extra flags for the nodes' torrentfs get, space-separated (e.g. \"--log-level debug\")")
	if err := fl.Parse(args); err != nil {
		return err
	}
	c.nodeArgs = strings.Fields(*nodeArgs)
	var err error
	if c.rate, err = parseRate(*rate); err != nil || c.rate <= 0 {
		return fmt.Errorf("--rate %q: want a positive rate", *rate)
	}
	if c.size, err = parseRate(*size); err != nil || c.size <= 0 {
		return fmt.Errorf("--size %q: want a positive size", *size)
	}
	c.pieceSize = *piece
	var counts []int
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 150 {
			return fmt.Errorf("--nodes %q: want counts from 1 to 150", *nodes)
		}
		counts = append(counts, n)
	}
	rows := strings.Split(*clients, ",")
	for _, r := range rows {
		if !slices.Contains(fleetRows, r) {
			return fmt.Errorf("--clients: unknown row %q", r)
		}
	}
	if slices.Contains(rows, "webseed") && !c.hasWebSeeds() {
		// An engine from before web seeds (BEP 19): the row cannot run.
		fmt.Fprintln(os.Stderr, "fleet: this torrentfs has no web seeds (no --no-web-seeds flag): skipping the webseed row")
		rows = slices.DeleteFunc(rows, func(r string) bool { return r == "webseed" })
	}
	// Absolute paths: the clients' done scripts run wherever the clients like.
	if c.work, err = filepath.Abs(c.work); err != nil {
		return err
	}
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	c.image = filepath.Join(c.work, "data", "image.bin")
	if err := writeRandom(c.image, c.size); err != nil {
		return err
	}
	if c.imageSum, err = sha256File(c.image); err != nil {
		return err
	}
	rec, closeRec, err := newRecorder("fleet", *results)
	if err != nil {
		return err
	}
	defer closeRec()

	bound := float64(c.size) / float64(c.rate)
	fmt.Fprintf(os.Stderr, "fleet: %d MiB image in %s pieces, every uplink %s/s with %v one-way delay (RTT %v); lower bound size/R = %.1f s; rows %v, nodes %v\n",
		c.size>>20, c.pieceSize, humanRate(c.rate), c.delay, 2*c.delay, bound, rows, counts)
	var all []fleetResult
	for _, n := range counts {
		for rep := 1; rep <= *rounds; rep++ {
			for _, client := range rows {
				if err := ctx.Err(); err != nil {
					return err
				}
				r, err := c.row(ctx, client, n)
				if err != nil {
					return fmt.Errorf("%s with %d nodes: %w", client, n, err)
				}
				r.rep = rep
				all = append(all, r)
				c.record(rec, r)
			}
		}
	}
	fmt.Println()
	printFleet(os.Stdout, all, bound, c.size)
	checkFleet(os.Stdout, all, bound, c.size)
	return nil
}

type fleetConfig struct {
	bin       string
	work      string
	image     string // the image, on the bench's disk; rows hard-link it
	imageSum  string // its SHA-256
	size      int64
	rate      int64
	delay     time.Duration
	pieceSize string
	nodeArgs  []string // extra flags for the nodes' torrentfs get
}

// fleetResult is one row: seconds from the nodes' start to each node's completion, and
// bytes the hosts sent meanwhile.
type fleetResult struct {
	client    string
	n, rep    int
	done      []float64 // per node, sorted
	originUp  int64
	nodesUp   int64
	busy      float64 // the machine's CPU busy fraction (both cores, everyone's load)
	benchCPU  float64 // this process's CPU seconds (the delay lines, mostly)
	clientCPU float64 // the clients' CPU seconds, origin and nodes, until stopped
}

const (
	fleetPeerPort = 6881
	fleetTracker  = 6969
	fleetHTTPPort = 8080
)

// hasWebSeeds tells whether the torrentfs under test takes web seeds from a torrent (its
// get has --no-web-seeds then).
func (c *fleetConfig) hasWebSeeds() bool {
	out, _ := osexec.Command(c.bin, "get", "-h").CombinedOutput()
	return bytes.Contains(out, []byte("no-web-seeds"))
}

// row builds a lab of 1+n hosts, runs client on it and tears it all down, failure or not.
func (c *fleetConfig) row(ctx context.Context, client string, n int) (res fleetResult, err error) {
	res = fleetResult{client: client, n: n}
	dir := filepath.Join(c.work, fmt.Sprintf("n%d-%s", n, client))
	if err := os.RemoveAll(dir); err != nil {
		return res, err
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return res, err
	}
	bt := &benchT{name: "fleet"}
	defer bt.cleanup() // runs after the processes are stopped (defers run last first)
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop(5 * time.Second)
		}
	}()
	startIn := func(name string, h *netns.Host, argv ...string) (*proc, error) {
		p, err := start(name, filepath.Join(logs, name+".log"), h.Command(argv[0], argv[1:]...)...)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}

	nt, err := bt.newNet(n + 1)
	if err != nil {
		return res, err
	}
	if err := bt.try(func() {
		for _, h := range nt.Hosts {
			nt.Delay(bt, h, c.delay)
			nt.Shape(bt, h, int(c.rate))
		}
	}); err != nil {
		return res, err
	}
	origin, nodes := nt.Hosts[0], nt.Hosts[1:]
	oip := origin.IP.String()
	announce := fmt.Sprintf("http://%s:%d/announce", oip, fleetTracker)
	imageURL := fmt.Sprintf("http://%s:%d/image.bin", oip, fleetHTTPPort)

	// The torrent names the origin's tracker, whose address is this lab's.
	torrent := filepath.Join(dir, "image.torrent")
	cargs := []string{"create", "-f", "--no-date", "--piece-size", c.pieceSize, "-t", announce, "-o", torrent}
	if client == "webseed" {
		cargs = append(cargs, "--web-seed", imageURL)
	}
	if _, err := runCmd(ctx, 2*time.Minute, append(append([]string{c.bin}, cargs...), c.image)...); err != nil {
		return res, err
	}
	mi, err := metainfo.Load(torrent)
	if err != nil {
		return res, err
	}
	originDir := filepath.Join(dir, "origin")
	if err := linkTree(c.image, filepath.Join(originDir, "image.bin")); err != nil {
		return res, err
	}

	// The origin.
	if client != "http" {
		if _, err := startIn("tracker", origin, c.bin, "tracker", "--listen", fmt.Sprintf("%s:%d", oip, fleetTracker), "--interval", "15s"); err != nil {
			return res, err
		}
	}
	switch client {
	case "torrentfs", "torrentfs-spread":
		argv := []string{c.bin, "seed", "--no-dht", "--no-lsd", "--no-port-map",
			"--listen", fmt.Sprintf("%s:%d", oip, fleetPeerPort), "--data", originDir, torrent}
		if client == "torrentfs-spread" {
			argv = append(argv, "--spread")
		}
		_, err = startIn("origin", origin, argv...)
	case "aria2c":
		_, err = startIn("origin", origin, aria2cFleetArgs(originDir, "", "--check-integrity=true", torrent)...)
	case "transmission":
		cfg := filepath.Join(dir, "origin-config")
		if err = transmissionFleetConfig(cfg, oip, originDir); err == nil {
			_, err = startIn("origin", origin, "transmission-cli", "-g", cfg, "-w", originDir, "-p", strconv.Itoa(fleetPeerPort), torrent)
		}
	case "http", "webseed":
		_, err = startNginx(dir, origin, oip, originDir, startIn)
	}
	if err != nil {
		return res, err
	}
	// Ready when nginx serves the image and the tracker answers, counting the origin as a
	// seed when it is a BitTorrent seeder.
	err = poll(ctx, 2*time.Minute, 200*time.Millisecond, func() bool {
		for _, p := range procs {
			if p.exited() {
				return true
			}
		}
		if client == "http" || client == "webseed" {
			r, err := (&http.Client{Timeout: 2 * time.Second}).Head(imageURL)
			if err != nil {
				return false
			}
			r.Body.Close()
			if r.StatusCode != http.StatusOK || client == "http" {
				return r.StatusCode == http.StatusOK
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := tracker.Scrape(sctx, announce, [][20]byte{mi.InfoHash})
		return err == nil && (client == "webseed" || st[mi.InfoHash].Complete >= 1)
	})
	for _, p := range procs {
		if p.exited() {
			err = fmt.Errorf("%s exited early: %v (log in %s)", p.name, p.err, logs)
		}
	}
	if err != nil {
		return res, fmt.Errorf("origin not ready: %w", err)
	}

	// The nodes, all at once.
	nodeDirs := make([]string, n)
	doneFiles := make([]string, n)
	nodeProcs := make([]*proc, n)
	up0 := sentBytes(nt.Hosts)
	cpu0, busy0 := cpuTimes()
	self0 := selfCPU()
	t0 := time.Now()
	for i, h := range nodes {
		name := fmt.Sprintf("node%02d", i+1)
		nodeDirs[i] = filepath.Join(dir, name)
		doneFiles[i] = filepath.Join(dir, name+".done")
		if err := os.MkdirAll(nodeDirs[i], 0o755); err != nil {
			return res, err
		}
		ip := h.IP.String()
		var argv []string
		switch client {
		case "torrentfs", "torrentfs-spread", "webseed":
			argv = []string{c.bin, "get", "--seed", "--no-dht", "--no-lsd", "--no-port-map",
				"--listen", fmt.Sprintf("%s:%d", ip, fleetPeerPort), "--out", nodeDirs[i]}
			argv = append(append(argv, c.nodeArgs...), torrent)
		case "aria2c":
			script, err := doneScript(dir, name, doneFiles[i])
			if err != nil {
				return res, err
			}
			argv = aria2cFleetArgs(nodeDirs[i], script, "--file-allocation=none", torrent)
		case "transmission":
			script, err := doneScript(dir, name, doneFiles[i])
			if err != nil {
				return res, err
			}
			cfg := filepath.Join(dir, name+"-config")
			if err := transmissionFleetConfig(cfg, ip, nodeDirs[i]); err != nil {
				return res, err
			}
			argv = []string{"transmission-cli", "-g", cfg, "-w", nodeDirs[i], "-p", strconv.Itoa(fleetPeerPort), "-f", script, torrent}
		case "http":
			argv = []string{"curl", "-sS", "--fail", "-o", filepath.Join(nodeDirs[i], "image.bin"), imageURL}
		}
		if nodeProcs[i], err = startIn(name, h, argv...); err != nil {
			return res, err
		}
	}
	bound := time.Duration(float64(c.size) / float64(c.rate) * float64(time.Second))
	timeout := 6*bound + 2*time.Minute
	if client == "http" {
		timeout = 2*time.Duration(n)*bound + time.Minute
	}
	fmt.Fprintf(os.Stderr, "fleet: %s, %d nodes on %s (origin %s): started; giving up after %v\n", client, n, nt.Bridge, oip, timeout)
	done := make([]float64, n)
	left := n
	var upEnd []int64
	err = poll(ctx, timeout, 100*time.Millisecond, func() bool {
		now := time.Since(t0).Seconds()
		for i := range n {
			if done[i] > 0 {
				continue
			}
			if c.nodeDone(client, nodeProcs[i], doneFiles[i]) {
				done[i] = now
				left--
			}
		}
		if left == 0 {
			upEnd = sentBytes(nt.Hosts)
			return true
		}
		for _, p := range procs {
			if p.exited() && (client != "http" || p.err != nil) {
				return true
			}
		}
		return false
	})
	cpu1, busy1 := cpuTimes()
	res.benchCPU = selfCPU() - self0
	if cpu1 > cpu0 {
		res.busy = float64(busy1-busy0) / float64(cpu1-cpu0)
	}
	for _, p := range procs {
		if p.exited() && (client != "http" || p.err != nil) && left > 0 {
			err = fmt.Errorf("%s exited: %v (log in %s)", p.name, p.err, logs)
		}
	}
	if err == nil && left > 0 {
		err = fmt.Errorf("%d of %d nodes not done", left, n)
	}
	for _, p := range procs {
		p.stop(5 * time.Second)
		cpu, _ := p.usage()
		res.clientCPU += cpu
	}
	if err != nil {
		return res, fmt.Errorf("%w (logs in %s)", err, logs)
	}
	res.done = slices.Sorted(slices.Values(done))
	res.originUp = upEnd[0] - up0[0]
	for i := 1; i < len(upEnd); i++ {
		res.nodesUp += upEnd[i] - up0[i]
	}
	// Every copy checked against the image, whatever the client said.
	for i := range n {
		got, err := sha256File(filepath.Join(nodeDirs[i], "image.bin"))
		if err != nil || got != c.imageSum {
			return res, fmt.Errorf("node%02d's copy differs from the image (%v)", i+1, err)
		}
	}
	for i := range n {
		os.RemoveAll(nodeDirs[i])
	}
	return res, nil
}

// nodeDone tells whether a node has a complete, verified copy by its client's own word:
// torrentfs get prints "downloaded ..." once every piece is verified; aria2c and
// Transmission run the done script when the download completes; curl exits.
func (c *fleetConfig) nodeDone(client string, p *proc, doneFile string) bool {
	switch client {
	case "torrentfs", "torrentfs-spread", "webseed":
		b, err := os.ReadFile(p.logPath)
		return err == nil && (bytes.HasPrefix(b, []byte("downloaded ")) || bytes.Contains(b, []byte("\ndownloaded ")))
	case "http":
		return p.exited() && p.err == nil
	default:
		_, err := os.Stat(doneFile)
		return err == nil
	}
}

// doneScript writes a script that creates doneFile, for a client's download-complete hook.
func doneScript(dir, name, doneFile string) (string, error) {
	path := filepath.Join(dir, name+"-done.sh")
	return path, os.WriteFile(path, []byte("#!/bin/sh\nexec touch '"+doneFile+"'\n"), 0o755)
}

// aria2cFleetArgs: aria2c seeding forever once complete (--seed-ratio=0.0), tracker only
// (its DHT and LPD off; PEX at its default, on), any number of peers.
func aria2cFleetArgs(dir, doneScript, extra, torrent string) []string {
	args := []string{"aria2c", "--dir=" + dir, "--seed-ratio=0.0", "--enable-dht=false", "--enable-dht6=false",
		"--bt-enable-lpd=false", "--listen-port=" + strconv.Itoa(fleetPeerPort), "--bt-max-peers=0",
		"--console-log-level=warn", "--summary-interval=0", extra}
	if doneScript != "" {
		args = append(args, "--on-bt-download-complete="+doneScript)
	}
	return append(args, torrent)
}

// transmissionFleetConfig writes a Transmission 3.00 config dir for a peer on ip:6881 with
// data in dataDir: no limits, seeding forever, DHT, LPD, uTP and port mapping off, PEX at
// its default (on).
func transmissionFleetConfig(dir, ip, dataDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	settings := fmt.Sprintf(`{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": true,
 "utp-enabled": false, "port-forwarding-enabled": false, "rpc-enabled": false, "blocklist-enabled": false,
 "bind-address-ipv4": %q, "peer-port": %d, "peer-port-random-on-start": false,
 "speed-limit-up-enabled": false, "speed-limit-down-enabled": false, "alt-speed-enabled": false,
 "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false, "download-dir": %q,
 "incomplete-dir-enabled": false, "rename-partial-files": false, "start-added-torrents": true,
 "message-level": 1}`, ip, fleetPeerPort, dataDir)
	return os.WriteFile(filepath.Join(dir, "settings.json"), []byte(settings), 0o644)
}

// startNginx serves dataDir at http://ip:8080/ from host h: one process (no master, no
// workers, so SIGTERM ends it), all its paths under dir.
func startNginx(dir string, h *netns.Host, ip, dataDir string, startIn func(string, *netns.Host, ...string) (*proc, error)) (*proc, error) {
	prefix, err := filepath.Abs(filepath.Join(dir, "nginx"))
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	default_type application/octet-stream;
	sendfile on;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s:%[3]d;
		root %[4]s;
	}
}
`, prefix, ip, fleetHTTPPort, root)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return startIn("nginx", h, "nginx", "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-c", confPath)
}

// sentBytes is what each host has sent: the receive counter of its veth's bridge end,
// from /proc/net/dev (which shows this process's namespace, the jail's; /sys/class/net
// shows the namespace that mounted /sys).
func sentBytes(hosts []*netns.Host) []int64 {
	rx := map[string]int64{}
	b, _ := os.ReadFile("/proc/net/dev")
	for _, l := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		if f := strings.Fields(rest); ok && len(f) > 0 {
			rx[strings.TrimSpace(name)], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	out := make([]int64, len(hosts))
	for i, h := range hosts {
		out[i] = rx[h.Veth]
	}
	return out
}

// cpuTimes is the machine's total and busy (not idle, not iowait) jiffies from /proc/stat.
func cpuTimes() (total, busy int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		if i >= 8 { // guest times are already in user and nice
			break
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return total, busy
}

// selfCPU is this process's user+system CPU seconds so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func (c *fleetConfig) record(rec *recorder, r fleetResult) {
	add := func(metric string, v float64, unit string) {
		rec.add(sample{Client: r.client, Metric: metric, Rep: r.rep, Value: v, Unit: unit, Nodes: r.n,
			Note: fmt.Sprintf("%d nodes, %s/s uplinks, %v one-way", r.n, humanRate(c.rate), c.delay)})
	}
	add("all_done", r.done[len(r.done)-1], "s")
	add("median_done", median(r.done), "s")
	add("origin_up", float64(r.originUp)/(1<<20), "MiB")
	add("origin_copies", float64(r.originUp)/float64(c.size), "copies")
	add("nodes_up", float64(r.nodesUp)/(1<<20), "MiB")
	add("cpu_busy", r.busy, "frac")
}

// printFleet writes the rows as a Markdown table, ready for docs/BENCHMARKS.md.
func printFleet(w io.Writer, rs []fleetResult, bound float64, size int64) {
	fmt.Fprintln(w, "| nodes | client | all done | median | size/R | all done ÷ size/R | origin sent | nodes sent | CPU busy | bench CPU | clients' CPU |")
	fmt.Fprintln(w, "|------:|--------|---------:|-------:|-------:|------:|------------:|-----------:|------:|------:|------:|")
	for _, r := range rs {
		max := r.done[len(r.done)-1]
		fmt.Fprintf(w, "| %d | %s | %.1f s | %.1f s | %.1f s | %.2f× | %.0f MiB (%.2f copies) | %.0f MiB | %.0f%% | %.0f s | %.0f s |\n",
			r.n, r.client, max, median(r.done), bound, max/bound, float64(r.originUp)/(1<<20),
			float64(r.originUp)/float64(size), float64(r.nodesUp)/(1<<20), r.busy*100, r.benchCPU, r.clientCPU)
	}
}

// checkFleet: ours within 1.25× of size/R, ahead of aria2c and Transmission, and the
// origin sending under two copies of the image at the largest fleet.
func checkFleet(w io.Writer, rs []fleetResult, bound float64, size int64) {
	type key struct {
		client string
		n      int
	}
	best := map[key]float64{} // smallest all-done over rounds
	worstCopies := map[key]float64{}
	var ns []int
	for _, r := range rs {
		k := key{r.client, r.n}
		v := r.done[len(r.done)-1]
		if b, ok := best[k]; !ok || v < b {
			best[k] = v
		}
		worstCopies[k] = max(worstCopies[k], float64(r.originUp)/float64(size))
		if !slices.Contains(ns, r.n) {
			ns = append(ns, r.n)
		}
	}
	fmt.Fprintln(w, "\n| target | measured | met |")
	fmt.Fprintln(w, "|--------|---------:|-----|")
	yes := map[bool]string{true: "yes", false: "**no**"}
	maxN := slices.Max(ns)
	for _, row := range []string{"torrentfs", "torrentfs-spread"} {
		for _, n := range ns {
			ours, ok := best[key{row, n}]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "| %s, %d nodes: all done ≤ 1.25 × size/R (%.1f s) | %.1f s | %s |\n", row, n, 1.25*bound, ours, yes[ours <= 1.25*bound])
			for _, other := range []string{"aria2c", "transmission"} {
				if v, ok := best[key{other, n}]; ok {
					fmt.Fprintf(w, "| %s, %d nodes: all done before %s (%.1f s) | %.1f s | %s |\n", row, n, other, v, ours, yes[ours < v])
				}
			}
		}
		if c, ok := worstCopies[key{row, maxN}]; ok {
			fmt.Fprintf(w, "| %s, %d nodes: origin sends < 2 copies | %.2f copies | %s |\n", row, maxN, c, yes[c < 2])
		}
	}
}

func humanRate(b int64) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
