package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/tracker"
)

func init() {
	register(&command{
		name:  "tracker",
		short: "run a BitTorrent tracker (HTTP and UDP on one port)",
		long: `Serve an in-memory tracker: HTTP announce and scrape (BEP 3, BEP 23) and the UDP
tracker protocol (BEP 15), both on the port of --listen. It runs until interrupted
(Ctrl-C or SIGTERM). With --allow FILE it tracks only the info-hashes listed in FILE
(40 hex digits a line; blank lines and lines starting with # are skipped), as a
private swarm needs. Peers are announced at the address they connect from; a client's
"ip" parameter is honoured only when that address or the client's own is loopback or
private.`,
		setup: setupTracker,
	})
}

func setupTracker(fl *flag.FlagSet) func(args []string) error {
	listen := fl.String("listen", "127.0.0.1:6969", "`ADDR` (host:port) to serve HTTP (TCP) and UDP on")
	interval := fl.Duration("interval", tracker.ServerDefaultInterval, "re-announce interval told to clients")
	allow := fl.String("allow", "", "`FILE` of hex info-hashes to track, one a line (default: any)")
	return func(args []string) error {
		if len(args) != 0 {
			return usagef("unexpected argument %q", args[0])
		}
		if *interval < time.Second {
			return usagef("--interval %v: must be at least 1s", *interval)
		}
		cfg := tracker.ServerConfig{Interval: *interval}
		if *allow != "" {
			f, err := os.Open(*allow)
			if err != nil {
				return fmt.Errorf("reading allow list: %w", err)
			}
			set, err := parseTrackerAllowList(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("reading allow list %s: %w", *allow, err)
			}
			cfg.Allow = func(ih [20]byte) bool { return set[ih] }
		}

		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ln, pc, err := tracker.ListenServer(*listen)
		if err != nil {
			return err
		}
		log := logrus.NewEntry(logrus.StandardLogger()).WithField("component", "tracker")
		srv := tracker.NewServer(cfg, log)
		fields := logrus.Fields{
			"http":     fmt.Sprintf("http://%s/announce", ln.Addr()),
			"udp":      fmt.Sprintf("udp://%s/announce", pc.LocalAddr()),
			"interval": interval.String(),
		}
		if *allow != "" {
			fields["allow"] = *allow
		}
		log.WithFields(fields).Info("tracker serving")
		if err := srv.Serve(ctx, ln, pc); err != nil {
			return err
		}
		log.Info("tracker stopped")
		return nil
	}
}

// parseTrackerAllowList reads one hex info-hash a line; blank lines and #-comments are
// skipped so the file can be kept by hand.
func parseTrackerAllowList(r io.Reader) (map[[20]byte]bool, error) {
	set := make(map[[20]byte]bool)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != 20 {
			return nil, fmt.Errorf("line %d: %q is not a 40-digit hex info-hash", n, trackerClip(line))
		}
		set[[20]byte(b)] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return set, nil
}

func trackerClip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
