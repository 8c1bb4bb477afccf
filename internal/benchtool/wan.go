package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"torrentfs/internal/netns"
	"torrentfs/internal/qbit"
	"torrentfs/metainfo"
	"torrentfs/tracker"
)

// The stream lab over WAN-like links (scripts/bench stream --wan, issue 13): the same viewer
// measurements, but every seeder is a host of its own (a network namespace on a bridge,
// internal/netns) whose uplink is shaped to its own rate (tbf) and delayed by its own
// round-trip time (netns.Delay on what it sends; what it receives is not delayed, so the
// delay is the whole RTT between it and the viewer). The viewer (our mount, btfs, the
// aria2c ceiling) is one more host on the bridge, neither shaped nor delayed; its FUSE
// mounts are made from inside its network namespace but land in the shared mount
// namespace, where the probes read them. The tracker listens on the bridge, in the jail's
// own namespace, and the torrents are copies of the lab's that announce there.
//
// The seeders' rates come from tbf alone (the clients' own upload limits are off): a
// kernel-paced link rather than a client's limiter, so libtorrent's exemption of local
// peers from its limits (see qbit.Profile) does not come into it.

// wanSeeder is one seeder host's link: its uplink rate and its round-trip time to the viewer.
type wanSeeder struct {
	rate int64 // bytes per second
	rtt  time.Duration
}

// wanPeerPort is where a seeder listens; a seeder kind that runs a process per torrent
// (aria2c, Transmission) listens on wanPeerPort+j for the j-th torrent.
const (
	wanPeerPort    = 6881
	wanTrackerPort = 6969
	wanWebPort     = 8080 // qBittorrent's WebUI, on the seeder's address
)

// parseWANSeeders pairs a comma-separated list of rates (K, M suffixes) with one of
// round-trip times, in order: the i-th seeder has the i-th rate and the i-th RTT.
func parseWANSeeders(rates, rtts string) ([]wanSeeder, error) {
	rs, ts := strings.Split(rates, ","), strings.Split(rtts, ",")
	if len(rs) != len(ts) {
		return nil, fmt.Errorf("--wan-rates has %d seeders and --wan-rtts %d: one RTT for each rate", len(rs), len(ts))
	}
	if len(rs) > 50 {
		return nil, fmt.Errorf("%d seeders: at most 50", len(rs))
	}
	var out []wanSeeder
	for i := range rs {
		r, err := parseRate(strings.TrimSpace(rs[i]))
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("--wan-rates: %q is not a positive rate (e.g. 2M)", rs[i])
		}
		d, err := time.ParseDuration(strings.TrimSpace(ts[i]))
		if err != nil || d < 0 || d > 10*time.Second {
			return nil, fmt.Errorf("--wan-rtts: %q is not a round-trip time from 0 to 10s (e.g. 50ms)", ts[i])
		}
		out = append(out, wanSeeder{rate: r, rtt: d})
	}
	return out, nil
}

// wanSum is the seeders' rates together, the most the viewer can receive.
func wanSum(seeders []wanSeeder) int64 {
	var s int64
	for _, sd := range seeders {
		s += sd.rate
	}
	return s
}

// wanFarthest is the largest RTT among the seeders: the goals count round trips of the
// farthest seeder used, and every seeder is used (the background download asks them all).
func wanFarthest(seeders []wanSeeder) time.Duration {
	var m time.Duration
	for _, sd := range seeders {
		m = max(m, sd.rtt)
	}
	return m
}

func describeWAN(seeders []wanSeeder) string {
	var parts []string
	for _, sd := range seeders {
		parts = append(parts, fmt.Sprintf("%s/s@%v", humanRate(sd.rate), sd.rtt))
	}
	return strings.Join(parts, ", ")
}

// wanUnit is the bytes a 64 KiB read waits for in a torrent of piece size label: the whole
// piece in v1, whose pieces are verified whole; only the read itself in the hybrid, read
// block by block (BEP 52 verifies each 16 KiB block against the piece's Merkle tree).
func wanUnit(label string, pieceLen int64) int64 {
	if label == piece4Mv2 {
		return 64 << 10
	}
	return pieceLen
}

// wanGoals are issue 13's goals for client in a lab of these seeders, computed from the
// links: with R the seeders' rates together and RTT the farthest seeder's,
//
//   - first byte (a fresh mount's first 64 KiB) within 5 RTTs plus one piece at R: a TCP
//     handshake, the BitTorrent handshakes, interested and unchoke, and the request, with
//     a round trip to spare; the same for seeks in fresh mounts, each of its own piece size;
//   - seek median in a mount already connected and downloading within 2 RTTs plus one
//     piece at R (a request and its answer, with one round trip to spare);
//   - a sequential copy at 90% of R (of 128 MiB; with long, of 1 GiB too: step longcopy);
//   - no stalls in playback (either video) nor in the paced reader.
//
// units maps each piece-size label measured to the bytes a read waits for (wanUnit).
func wanGoals(seeders []wanSeeder, units map[string]int64, client string, long bool) []target {
	rate := float64(wanSum(seeders))
	rtt := wanFarthest(seeders).Seconds()
	var ts []target
	xfer := func(label string) float64 { return float64(units[label]) / rate }
	if _, ok := units["256K"]; ok {
		lim := 5*rtt + xfer("256K")
		ts = append(ts, target{client, "ttfb", "256K", "median", "<=", lim,
			fmt.Sprintf("first byte ≤ 5 RTT + 256 KiB at R = %s (median)", fmtValue(lim, "s"))})
	}
	for _, g := range []struct {
		metric, what string
		rtts         float64
	}{{"seek", "fresh-mount seek", 5}, {"seek_live", "seek in a downloading mount", 2}} {
		for _, label := range []string{"256K", "4M", piece4Mv2} {
			if _, ok := units[label]; !ok {
				continue
			}
			lim := g.rtts*rtt + xfer(label)
			ts = append(ts, target{client, g.metric, label, "median", "<=", lim,
				fmt.Sprintf("%s ≤ %g RTT + %s at R = %s (median), %s", g.what, g.rtts, unitWhat(label, units[label]), fmtValue(lim, "s"), label)})
		}
	}
	ts = append(ts,
		target{client, "copy_frac", "256K", "median", ">=", 0.9, fmt.Sprintf("sequential copy ≥ 90%% of R = %s/s", humanRate(int64(rate)))},
	)
	if long {
		ts = append(ts, target{client, "copy_long_frac", "256K", "median", ">=", 0.9, fmt.Sprintf("sequential copy of 1 GiB ≥ 90%% of R = %s/s", humanRate(int64(rate)))})
	}
	ts = append(ts,
		target{client, "stalls_faststart", "256K", "max", "<=", 0, "no stalls, index first"},
		target{client, "stalls_tailindex", "256K", "max", "<=", 0, "no stalls, index last"},
		target{client, "paced_blocked", "256K", "max", "<=", 0, "paced reader never blocks > 0.5 s"},
	)
	return ts
}

func unitWhat(label string, unit int64) string {
	if label == piece4Mv2 {
		return humanRate(unit) + " (the read)"
	}
	return "one " + humanRate(unit) + " piece"
}

// printGoalsSideBySide writes one row per goal with each client's measured statistic and
// whether it meets the goal; goalsFor gives a client's goals, all in the same order.
func printGoalsSideBySide(w io.Writer, sums []summary, clients []string, goalsFor func(client string) []target) {
	fmt.Fprintf(w, "\n| goal |")
	for _, c := range clients {
		fmt.Fprintf(w, " %s |", c)
	}
	fmt.Fprintf(w, "\n|------|")
	for range clients {
		fmt.Fprintf(w, "------|")
	}
	fmt.Fprintln(w)
	per := make([][]target, len(clients))
	for i, c := range clients {
		per[i] = goalsFor(c)
	}
	for k, t := range per[0] {
		fmt.Fprintf(w, "| %s |", t.what)
		for i := range clients {
			fmt.Fprintf(w, " %s |", targetCell(sums, per[i][k]))
		}
		fmt.Fprintln(w)
	}
}

// targetCell is a goal's measured statistic and verdict for one table cell.
func targetCell(sums []summary, t target) string {
	v, unit, ok, found := evalTarget(sums, t)
	if !found {
		return "not measured"
	}
	return fmt.Sprintf("%s %s: %s", t.stat, fmtValue(v, unit), map[bool]string{true: "yes", false: "**no**"}[ok])
}

// wanLab is the WAN lab's hosts and the processes it started in them (tracker, seeders);
// owned by the main goroutine like the rest of the lab. stop takes it all down.
type wanLab struct {
	seeders []wanSeeder
	bt      *benchT
	net     *netns.Net
	viewer  *netns.Host
	procs   []*proc
}

// viewerIP is the viewer host's address, for the mounts' listen and HTTP addresses.
func (w *wanLab) viewerIP() string { return w.viewer.IP.String() }

func (w *wanLab) stop() {
	for i := len(w.procs) - 1; i >= 0; i-- {
		w.procs[i].stop(5 * time.Second)
	}
	w.bt.cleanup()
}

// startWAN builds the WAN lab for l: hosts, links, tracker, torrents that announce to it
// (l.cfg.torrents is pointed at them) and seeders, and waits until every seeder answers a
// handshake for every torrent. On error nothing it started is left.
func (l *lab) startWAN(ctx context.Context, seeders []wanSeeder) (w *wanLab, err error) {
	w = &wanLab{seeders: seeders, bt: &benchT{name: "stream --wan"}}
	defer func() {
		if err != nil {
			w.stop()
		}
	}()
	if w.net, err = w.bt.newNet(1 + len(seeders)); err != nil {
		return nil, err
	}
	w.viewer = w.net.Hosts[0]
	if err := w.bt.try(func() {
		for i, sd := range seeders {
			h := w.net.Hosts[1+i]
			w.net.Delay(w.bt, h, sd.rtt)
			// The link's queue holds a round trip's worth (at least 50 ms), as a WAN
			// router's buffer is sized to.
			w.net.ShapeQueue(w.bt, h, int(sd.rate), max(sd.rtt, 50*time.Millisecond))
		}
	}); err != nil {
		return nil, err
	}
	logs := filepath.Join(l.cfg.work, "logs")
	trAddr := net.JoinHostPort(w.net.BridgeIP.String(), strconv.Itoa(wanTrackerPort))
	interval := "10s"
	if l.cfg.seeder == "qbittorrent" {
		interval = "10m" // see startSwarm: libtorrent re-announces every 5 minutes at best
	}
	tr, err := start("tracker", filepath.Join(logs, "tracker.log"), l.cfg.torrentfs, "tracker", "--listen", trAddr, "--interval", interval)
	if err != nil {
		return nil, err
	}
	w.procs = append(w.procs, tr)

	// The lab's torrents announce to 127.0.0.1, which in a host is the host itself.
	labels := l.seeded()
	announce := "http://" + trAddr + "/announce"
	tdir := filepath.Join(l.cfg.work, "torrents")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		return nil, err
	}
	var torrents []string
	for _, label := range labels {
		dst, err := filepath.Abs(filepath.Join(tdir, filepath.Base(l.cfg.torrents[label])))
		if err != nil {
			return nil, err
		}
		if err := retarget(l.cfg.torrents[label], dst, announce); err != nil {
			return nil, err
		}
		l.cfg.torrents[label] = dst
		torrents = append(torrents, dst)
	}

	for i := range seeders {
		h := w.net.Hosts[1+i]
		sname := fmt.Sprintf("seed%d", i+1)
		dir, err := filepath.Abs(filepath.Join(l.cfg.work, sname))
		if err != nil {
			return nil, err
		}
		var contents []seederContent
		for j, label := range labels {
			contents = append(contents, seederContent{torrents[j], l.dataOf(label), l.mi[label].Info.Name})
		}
		ps, err := startWANSeeder(ctx, l.cfg, h, sname, logs, dir, contents)
		w.procs = append(w.procs, ps...)
		if err != nil {
			return nil, err
		}
	}

	// Ready when the tracker counts every seeder of every torrent as complete and every
	// seeder answers a handshake (see warmSeeders).
	for j, label := range labels {
		ih := l.mi[label].InfoHash
		var complete int
		err := poll(ctx, 3*time.Minute, 200*time.Millisecond, func() bool {
			for _, p := range w.procs {
				if p.exited() {
					return true
				}
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			st, err := tracker.Scrape(sctx, announce, [][20]byte{ih})
			if err != nil {
				return false
			}
			complete = st[ih].Complete
			return complete >= len(seeders)
		})
		for _, p := range w.procs {
			if p.exited() {
				err = fmt.Errorf("%s exited early: %v (see %s)", p.name, p.err, logs)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("wait for %d seeders of %s (tracker counts %d): %w", len(seeders), label, complete, err)
		}
		var addrs []string
		for i := range seeders {
			addrs = append(addrs, net.JoinHostPort(w.net.Hosts[1+i].IP.String(), strconv.Itoa(wanSeederPort(l.cfg.seeder, j))))
		}
		if err := warmSeeders(ctx, ih, addrs); err != nil {
			return nil, err
		}
		if j == 0 {
			if err := checkLinks(ctx, ih, addrs, seeders); err != nil {
				return nil, err
			}
		}
	}
	return w, nil
}

// checkLinks times a BitTorrent handshake with each seeder from the bridge (a TCP connect
// and the handshakes: two round trips) and fails if one came back sooner than the link's
// RTT allows: then the delay line is not in the seeder's path.
func checkLinks(ctx context.Context, ih [20]byte, addrs []string, seeders []wanSeeder) error {
	var parts []string
	for i, a := range addrs {
		t0 := time.Now()
		if err := handshakeOnce(ctx, a, ih, 0); err != nil {
			return fmt.Errorf("link check, seeder %s: %w", a, err)
		}
		el := time.Since(t0)
		if el < 2*seeders[i].rtt {
			return fmt.Errorf("link check: a handshake with seeder %s took %v, under two round trips of %v: its packets skip the delay line", a, el.Round(time.Millisecond), seeders[i].rtt)
		}
		parts = append(parts, fmt.Sprintf("%s %v", a, el.Round(time.Millisecond)))
	}
	fmt.Fprintf(os.Stderr, "stream --wan: link check, handshakes (2 RTT each): %s\n", strings.Join(parts, ", "))
	return nil
}

// wanSeederPort is where a seeder of kind listens for the j-th torrent.
func wanSeederPort(kind string, j int) int {
	switch kind {
	case "aria2c", "transmission":
		return wanPeerPort + j
	}
	return wanPeerPort
}

// seederContent is a torrent a WAN seeder serves: its file, and the directory holding its
// content, which the torrent names name.
type seederContent struct{ torrent, data, name string }

// startWANSeeder starts the seeder processes of host h, seeding contents from under dir,
// with no upload limit of their own (the host's link is the limit). It returns what it
// started, also on error.
func startWANSeeder(ctx context.Context, cfg streamConfig, h *netns.Host, name, logs, dir string, contents []seederContent) ([]*proc, error) {
	var torrents []string
	for _, c := range contents {
		torrents = append(torrents, c.torrent)
	}
	ip := h.IP.String()
	var ps []*proc
	// dataFor links the payload for the j-th torrent: a tree of its own for each, as the
	// loopback lab gives each seeder process, except for torrentfs seed, which takes one
	// directory for all its torrents.
	dataFor := func(j int) (string, error) {
		d := filepath.Join(dir, "t"+strconv.Itoa(j))
		if cfg.seeder == "torrentfs" {
			d = filepath.Join(dir, "all")
		}
		return d, linkTree(contents[j].data, filepath.Join(d, contents[j].name))
	}
	run := func(pname string, argv ...string) error {
		p, err := start(pname, filepath.Join(logs, pname+".log"), h.Command(argv[0], argv[1:]...)...)
		if err == nil {
			ps = append(ps, p)
		}
		return err
	}
	switch cfg.seeder {
	case "qbittorrent":
		profile := dir + "-profile"
		p := qbit.Profile{IP: ip, Port: wanPeerPort, WebPort: wanWebPort, Interface: "eth0", WebAddress: ip}
		if err := p.Write(profile); err != nil {
			return ps, err
		}
		if err := run(name, "qbittorrent-nox", "--profile="+profile); err != nil {
			return ps, err
		}
		api := "http://" + net.JoinHostPort(ip, strconv.Itoa(wanWebPort))
		q := ps[len(ps)-1]
		err := poll(ctx, time.Minute, 100*time.Millisecond, func() bool { return q.exited() || qbit.Up(api) })
		if err == nil && q.exited() {
			err = fmt.Errorf("exited: %v", q.err)
		}
		for j, t := range torrents {
			if err != nil {
				break
			}
			var d string
			if d, err = dataFor(j); err == nil {
				err = qbit.Add(api, t, d)
			}
		}
		if err == nil {
			err = poll(ctx, 3*time.Minute, 200*time.Millisecond, func() bool { return q.exited() || qbit.Seeding(api) })
		}
		if err != nil {
			return ps, fmt.Errorf("qbittorrent-nox %s: %w (log %s)", name, err, q.logPath)
		}
	case "torrentfs":
		d, err := dataFor(0)
		if err != nil {
			return ps, err
		}
		argv := []string{cfg.torrentfs, "seed", "--no-dht", "--no-lsd", "--no-port-map", "--data", d,
			"--listen", net.JoinHostPort(ip, strconv.Itoa(wanPeerPort))}
		if err := run(name, append(argv, torrents...)...); err != nil {
			return ps, err
		}
	case "transmission":
		for j, t := range torrents {
			pname := fmt.Sprintf("%s-%d", name, j)
			d, err := dataFor(j)
			if err != nil {
				return ps, err
			}
			cfgDir := fmt.Sprintf("%s-config%d", dir, j)
			if err := transmissionSeederConfig(cfgDir, d, ip, wanPeerPort+j, 0); err != nil {
				return ps, err
			}
			if err := run(pname, "transmission-cli", "-g", cfgDir, "-w", d, "-p", strconv.Itoa(wanPeerPort+j), t); err != nil {
				return ps, err
			}
		}
	case "aria2c":
		for j, t := range torrents {
			pname := fmt.Sprintf("%s-%d", name, j)
			d, err := dataFor(j)
			if err != nil {
				return ps, err
			}
			if err := run(pname, "aria2c", "--dir="+d, "--seed-ratio=0.0", "--bt-seed-unverified=true",
				"--check-integrity=false", "--enable-dht=false", "--enable-dht6=false",
				"--bt-enable-lpd=false", "--enable-peer-exchange=false",
				"--interface="+ip, "--listen-port="+strconv.Itoa(wanPeerPort+j),
				"--console-log-level=warn", "--summary-interval=0", "--file-allocation=none",
				"--bt-max-peers=0", t); err != nil {
				return ps, err
			}
		}
	default:
		return ps, fmt.Errorf("--wan: unknown seeder %q (qbittorrent, transmission, torrentfs or aria2c)", cfg.seeder)
	}
	return ps, nil
}

// retarget writes a copy of the .torrent at src to dst that announces to announce alone.
// The info dictionary is copied byte for byte, so the info-hash stays the same.
func retarget(src, dst, announce string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var top map[string]bencode.Bytes
	if err := bencode.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("retarget %s: %w", src, err)
	}
	if _, ok := top["info"]; !ok {
		return fmt.Errorf("retarget %s: no info dictionary", src)
	}
	a, err := bencode.Marshal(announce)
	if err != nil {
		return err
	}
	top["announce"] = a
	delete(top, "announce-list")
	out, err := bencode.Marshal(top)
	if err != nil {
		return fmt.Errorf("retarget %s: %w", src, err)
	}
	if _, err := metainfo.Parse(out); err != nil {
		return fmt.Errorf("retarget %s: the copy does not parse: %w", src, err)
	}
	return os.WriteFile(dst, out, 0o644)
}

// tcpClient is the copy step's TCP ceiling in the WAN lab (tcpCeiling).
const tcpClient = "tcp"

// links snapshots what each seeder host has sent so far (counted on its veth's bridge end,
// frames with their headers, as tbf counts them), for linkNote; nil in the loopback lab.
func (l *lab) links() []int64 {
	if l.wan == nil {
		return nil
	}
	return sentBytes(l.wan.net.Hosts[1:])
}

// linkNote says how busy each seeder's link was over the secs since the snapshot before:
// what it sent against what its rate allows ("" in the loopback lab).
func (l *lab) linkNote(before []int64, secs float64) string {
	if l.wan == nil || before == nil || secs <= 0 {
		return ""
	}
	after := l.links()
	var parts []string
	for i, sd := range l.wan.seeders {
		parts = append(parts, fmt.Sprintf("%s/s %.0f%%", humanRate(sd.rate), 100*float64(after[i]-before[i])/(float64(sd.rate)*secs)))
	}
	return "links busy: " + strings.Join(parts, ", ")
}

// tcpCeiling is the copy as no BitTorrent client can beat it: every seeder host sends its
// share of 128 MiB (in proportion to its rate, so that all would end together) over one
// fresh TCP connection to the bridge, all at once; the copy rate is 128 MiB over the time
// until the last byte is in. What is lost to R is TCP/IP framing (tbf counts whole frames)
// and each connection's ramp-up over its round trip.
func (l *lab) tcpCeiling(ctx context.Context, rep int, metric string, mib int) error {
	total := int64(mib) << 20
	logs := filepath.Join(l.cfg.work, "logs")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sum := wanSum(l.wan.seeders)
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop(5 * time.Second)
		}
	}()
	addrs := make([]string, len(l.wan.seeders))
	shares := make([]int64, len(l.wan.seeders))
	var left int64 = total
	for i, sd := range l.wan.seeders {
		h := l.wan.net.Hosts[1+i]
		addrs[i] = net.JoinHostPort(h.IP.String(), "9000")
		shares[i] = total * sd.rate / sum
		if i == len(l.wan.seeders)-1 {
			shares[i] = left
		}
		left -= shares[i]
		p, err := start(fmt.Sprintf("tcpsend%d", i+1), filepath.Join(logs, fmt.Sprintf("tcpsend%d.log", i+1)),
			h.Command(self, "tcpsend", addrs[i], strconv.FormatInt(shares[i], 10))...)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	err = poll(ctx, 30*time.Second, 20*time.Millisecond, func() bool {
		for _, p := range procs {
			if b, _ := os.ReadFile(p.logPath); !strings.Contains(string(b), "ready") {
				return p.exited()
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("tcp ceiling: senders not ready: %w", err)
	}
	links := l.links()
	t0 := time.Now()
	errs := make(chan error, len(addrs))
	took := make([]time.Duration, len(addrs))
	for i, a := range addrs {
		go func() {
			err := receiveAll(ctx, a, shares[i])
			took[i] = time.Since(t0)
			errs <- err
		}()
	}
	for range addrs {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	secs := time.Since(t0).Seconds()
	if err != nil {
		return fmt.Errorf("tcp ceiling: %w", err)
	}
	// Each connection's own goodput, over the time until its last byte: a link whose
	// connection ramps up over a long round trip (slow start to a large bandwidth-delay
	// product) finishes last and sets the row's rate, while the others idle at the end.
	var own []string
	for i, sd := range l.wan.seeders {
		own = append(own, fmt.Sprintf("%s/s %v: %.0f%% in %.1fs", humanRate(sd.rate), sd.rtt, 100*float64(shares[i])/took[i].Seconds()/float64(sd.rate), took[i].Seconds()))
	}
	mibs := float64(mib) / secs
	l.rec.add(sample{Client: tcpClient, Metric: metric, Piece: "256K", Rep: rep, Value: mibs, Unit: "MiB/s"})
	l.rec.add(sample{Client: tcpClient, Metric: metric + "_frac", Piece: "256K", Rep: rep, Value: mibs / (l.totalRate() / (1 << 20)), Unit: "frac",
		Note: l.linkNote(links, secs) + "; each connection's goodput until its end: " + strings.Join(own, ", ")})
	return nil
}

// receiveAll connects to addr and reads until EOF, which must come after exactly n bytes.
func receiveAll(ctx context.Context, addr string, n int64) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	got, err := io.Copy(io.Discard, c)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("%s sent %d bytes, want %d", addr, got, n)
	}
	return nil
}

// probeTCPSend: benchtool tcpsend ADDR BYTES listens on ADDR, says "ready", and sends BYTES
// zero bytes to the first connection, then closes it.
func probeTCPSend(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: tcpsend ADDR BYTES")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("tcpsend: bad byte count %q", args[1])
	}
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println("ready")
	return sendZeros(ln, n)
}

// sendZeros sends n zero bytes to the first connection ln accepts, then closes it.
func sendZeros(ln net.Listener, n int64) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 1<<16)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}
