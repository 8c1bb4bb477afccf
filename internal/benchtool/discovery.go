package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"torrentfs/internal/netns"
	"torrentfs/metainfo"
)

// runDiscovery is scripts/bench discovery: a DHT of --nodes nodes on a LAN of test hosts
// (network namespaces on a bridge; ours and real aria2c and Transmission nodes mixed), one
// seeder, and a bare magnet link (no tracker, no x.pe). It times `torrentfs mount` from
// start to the file tree shown and the first 64 KiB read after that, cold (empty routing
// table, one bootstrap node) and warm (the table the cold run saved).
func runDiscovery(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("discovery", flag.ContinueOnError)
	bin := fl.String("torrentfs", ".bench/torrentfs", "torrentfs binary")
	work := fl.String("work", ".bench/discovery", "scratch directory")
	results := fl.String("results", ".bench/results.jsonl", "JSON lines of samples are appended here")
	nodes := fl.Int("nodes", 16, "DHT nodes besides the seeder and the mount")
	reps := fl.Int("reps", 3, "cold+warm pairs")
	seeder := fl.String("seeder", "torrentfs", "the seeder: torrentfs or aria2c")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *nodes < 4 {
		return errors.New("--nodes: at least 4")
	}
	os.RemoveAll(*work)
	if err := os.MkdirAll(filepath.Join(*work, "logs"), 0o755); err != nil {
		return err
	}
	bt := &benchT{name: "discovery"}
	defer bt.cleanup()
	rec, closeRec, err := newRecorder("discovery", *results)
	if err != nil {
		return err
	}
	defer closeRec()

	// The payload: a 32 MiB file and a small one, in a torrent with no tracker.
	data := filepath.Join(*work, "data")
	if err := writeRandom(filepath.Join(data, "payload", "movie.bin"), 32<<20); err != nil {
		return err
	}
	if err := writeRandom(filepath.Join(data, "payload", "notes.txt"), 10<<10); err != nil {
		return err
	}
	torrent := filepath.Join(*work, "payload.torrent")
	if _, err := runCmd(ctx, time.Minute, *bin, "create", "-piece-size", "256K", "-o", torrent, filepath.Join(data, "payload")); err != nil {
		return err
	}
	mi, err := metainfo.Load(torrent)
	if err != nil {
		return err
	}
	dummyData := filepath.Join(*work, "dummy")
	if err := writeRandom(filepath.Join(dummyData, "dummy", "x.bin"), 1<<20); err != nil {
		return err
	}
	dummy := filepath.Join(*work, "dummy.torrent")
	if _, err := runCmd(ctx, time.Minute, *bin, "create", "-o", dummy, filepath.Join(dummyData, "dummy")); err != nil {
		return err
	}

	nt, err := bt.newNet(*nodes + 1)
	if err != nil {
		return err
	}
	dhtAddr := func(i int) string { return nt.Hosts[i].IP.String() + ":6881" }
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop(3 * time.Second)
		}
	}()
	startIn := func(name string, h *netns.Host, argv ...string) error {
		p, err := start(name, filepath.Join(*work, "logs", name+".log"), h.Command(argv[0], argv[1:]...)...)
		if err == nil {
			procs = append(procs, p)
		}
		return err
	}
	// The DHT: host 0 is the bootstrap node (ours); of the others, every fourth is an
	// aria2c and every fourth a Transmission, "downloading" a torrent nobody has (their
	// DHT runs all the same); the rest are ours.
	kinds := map[string]int{}
	for i := range *nodes {
		h := nt.Hosts[i]
		ip := h.IP.String()
		name := fmt.Sprintf("node%02d", i)
		var err error
		switch {
		case i%4 == 1:
			kinds["aria2c"]++
			dir := filepath.Join(*work, name)
			err = startIn(name, h, "aria2c", "--dir="+dir, "--listen-port=6882", "--interface="+ip,
				"--enable-dht=true", "--enable-dht6=false", "--dht-listen-port=6881", "--dht-entry-point="+dhtAddr(0),
				"--dht-file-path="+filepath.Join(dir, "dht.dat"), "--bt-enable-lpd=false", "--enable-peer-exchange=false",
				"--seed-time=0", "--summary-interval=0", "--console-log-level=warn", dummy)
		case i%4 == 3:
			kinds["transmission"]++
			cfg := filepath.Join(*work, name)
			if err := transmissionConfig(cfg, ip, dhtAddr(0)); err != nil {
				return err
			}
			err = startIn(name, h, "transmission-cli", "-g", cfg, "-w", filepath.Join(cfg, "dl"), "-p", "6881", dummy)
		default:
			kinds["torrentfs"]++
			argv := []string{*bin, "dht", "serve", "--listen", dhtAddr(i), "--dht-state", "none"}
			if i > 0 {
				argv = append(argv, "--dht-bootstrap", dhtAddr(0))
			}
			err = startIn(name, h, argv...)
		}
		if err != nil {
			return err
		}
	}
	sh := nt.Hosts[*nodes]
	switch *seeder {
	case "torrentfs":
		err = startIn("seeder", sh, *bin, "seed", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", sh.IP.String()+":6881",
			"--dht-bootstrap", dhtAddr(2), "--dht-state", "none", "--data", data, torrent)
	case "aria2c":
		err = startIn("seeder", sh, "aria2c", "--dir="+data, "--listen-port=6882", "--interface="+sh.IP.String(),
			"--enable-dht=true", "--enable-dht6=false", "--dht-listen-port=6881", "--dht-entry-point="+dhtAddr(2),
			"--dht-file-path="+filepath.Join(*work, "seeder-dht.dat"), "--bt-enable-lpd=false", "--enable-peer-exchange=false",
			"--seed-ratio=0.0", "--check-integrity=true", "--summary-interval=0", "--console-log-level=warn", torrent)
	default:
		return fmt.Errorf("--seeder %q: want torrentfs or aria2c", *seeder)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "discovery: a DHT of %d nodes (%v) on %s, seeder %s on %s; waiting for its announce\n",
		*nodes, kinds, nt.Bridge, *seeder, sh.IP)
	// The lab is ready once a lookup from a stranger finds the seeder.
	t0 := time.Now()
	err = poll(ctx, 3*time.Minute, time.Second, func() bool {
		out, err := runCmd(ctx, 20*time.Second, *bin, "dht", "get-peers", "--listen", nt.BridgeIP.String()+":0",
			"--dht-bootstrap", dhtAddr(0), "--dht-state", "none", "--timeout", "5s", "--max", "1", mi.InfoHash.HexString())
		return err == nil && strings.Contains(out, sh.IP.String()+":")
	})
	if err != nil {
		return fmt.Errorf("the seeder's announce never reached the DHT: %w", err)
	}
	fmt.Fprintf(os.Stderr, "discovery: announce found after %.1f s\n", time.Since(t0).Seconds())

	mnt := filepath.Join(*work, "mnt")
	os.MkdirAll(mnt, 0o755)
	link := "magnet:?xt=urn:btih:" + mi.InfoHash.HexString()
	for rep := range *reps {
		state := filepath.Join(*work, fmt.Sprintf("dht-%d.state", rep))
		for _, phase := range []string{"cold", "warm"} {
			run := fmt.Sprintf("%d-%s", rep, phase)
			cache := filepath.Join(*work, "cache-"+run)
			argv := []string{*bin, "mount", "--no-lsd", "--no-port-map", "--no-trackers", "--listen", nt.BridgeIP.String() + ":7300",
				"--dht-bootstrap", dhtAddr(0), "--dht-state", state, "--cache-dir", cache, link, mnt}
			start0 := time.Now()
			p, err := start("mount-"+run, filepath.Join(*work, "logs", "mount-"+run+".log"), argv...)
			if err != nil {
				return err
			}
			file := filepath.Join(mnt, mi.Info.Name, "movie.bin")
			err = poll(ctx, 60*time.Second, 2*time.Millisecond, func() bool {
				_, err := os.Stat(file)
				return err == nil || p.exited()
			})
			shown := time.Since(start0).Seconds()
			if err == nil && !p.exited() {
				rec.add(sample{Client: "torrentfs", Metric: "files_shown_" + phase, Rep: rep, Value: shown, Unit: "s"})
				out, perr := runProbe(ctx, 30*time.Second, "readat", file, "0", "65536")
				v, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
				if perr != nil {
					err = perr
				} else {
					rec.add(sample{Client: "torrentfs", Metric: "first_64k_" + phase, Rep: rep, Value: v, Unit: "s", Note: "after the files were shown"})
				}
			} else if err == nil {
				err = fmt.Errorf("mount exited: %v", p.err)
			}
			p.stop(10 * time.Second)
			if isMounted(mnt) {
				_ = exec.Command("fusermount3", "-u", "-z", mnt).Run()
			}
			os.RemoveAll(cache)
			if err != nil {
				return fmt.Errorf("%s run: %w (log %s)", run, err, filepath.Join(*work, "logs", "mount-"+run+".log"))
			}
		}
	}
	sums := summarize(rec.samples)
	printTable(os.Stdout, sums)
	checkTargets(os.Stdout, sums, []target{
		{client: "torrentfs", metric: "files_shown_cold", stat: "median", limit: 2, what: "files shown, cold ≤ 2 s"},
		{client: "torrentfs", metric: "files_shown_warm", stat: "median", limit: 0.5, what: "files shown, warm ≤ 0.5 s"},
		{client: "torrentfs", metric: "first_64k_cold", stat: "median", limit: 0.2, what: "first 64 KiB after that, cold ≤ 0.2 s"},
		{client: "torrentfs", metric: "first_64k_warm", stat: "median", limit: 0.2, what: "first 64 KiB after that, warm ≤ 0.2 s"},
	})
	return nil
}

// transmissionConfig writes a Transmission config dir whose DHT starts from boot only,
// listening on ip, with everything else that could reach out off.
func transmissionConfig(dir, ip, boot string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	h, port, _ := strings.Cut(boot, ":")
	if err := os.WriteFile(filepath.Join(dir, "dht.bootstrap"), []byte(h+" "+port+"\n"), 0o644); err != nil {
		return err
	}
	settings := fmt.Sprintf(`{"dht-enabled": true, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
 "port-forwarding-enabled": false, "rpc-enabled": false, "bind-address-ipv4": %q, "peer-port": 6881,
 "peer-port-random-on-start": false, "download-dir": %q, "message-level": 1}`, ip, filepath.Join(dir, "dl"))
	return os.WriteFile(filepath.Join(dir, "settings.json"), []byte(settings), 0o644)
}

// writeRandom writes size pseudo-random bytes to path, once.
func writeRandom(path string, size int64) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() == size {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	x := uint64(size) | 1
	for left := size; left > 0; left -= int64(len(buf)) {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for k := range 8 {
				buf[i+k] = byte(x >> (8 * k))
			}
		}
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			return err
		}
	}
	return nil
}

// benchT is netns.T for a lab tool: a failure is kept as an error (and stops the build of
// the lab through panic/recover in New's caller), cleanups run at the end.
type benchT struct {
	name     string // prefixes what Errorf prints
	err      error
	cleanups []func()
}

func (b *benchT) Helper() {}
func (b *benchT) Fatal(args ...any) {
	b.err = errors.New(fmt.Sprint(args...))
	panic(b)
}
func (b *benchT) Fatalf(format string, args ...any) {
	b.err = fmt.Errorf(format, args...)
	panic(b)
}
func (b *benchT) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, b.name+": "+format+"\n", args...)
}
func (b *benchT) Cleanup(f func()) { b.cleanups = append(b.cleanups, f) }

// newNet is netns.New with its Fatal turned into an error.
func (b *benchT) newNet(hosts int) (nt *netns.Net, err error) {
	err = b.try(func() { nt = netns.New(b, hosts) })
	return nt, err
}

// try runs f, which may call b's Fatal (netns's calls do), and returns that failure as an
// error.
func (b *benchT) try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r != any(b) {
				panic(r)
			}
			err = b.err
		}
	}()
	f()
	return nil
}
func (b *benchT) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}
