package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/dht"
	"torrentfs/metainfo"
)

func init() {
	register(&command{
		name:  "dht",
		args:  "get-peers INFOHASH|MAGNET | serve",
		short: "ask the DHT for a torrent's peers, or run a DHT node",
		long: `get-peers starts a DHT node (BEP 5), looks up the torrent's peers and prints each as it
arrives with the time since the start, then a summary; with --announce PORT it also
announces that PORT serves the torrent. serve runs a node until Ctrl-C, printing its
table's size every --every: a bootstrap node for a LAN or a fleet. The routing table is
loaded from and saved to --dht-state, so a second run starts warm. --dht-bootstrap
chooses the nodes to start from.`,
		setup: setupDHT,
	})
}

func setupDHT(fs *flag.FlagSet) func([]string) error {
	var df discoveryFlags
	df.registerDHT(fs)
	listen := fs.String("listen", "0.0.0.0:0", "UDP address of our node")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to look")
	announce := fs.Uint("announce", 0, "announce this TCP `PORT` for the torrent (0: only look)")
	max := fs.Int("max", 0, "stop after this many peers (0: look until --timeout)")
	every := fs.Duration("every", time.Minute, "serve: how often to print the table's size")
	return func(args []string) error {
		serve := len(args) == 1 && args[0] == "serve"
		if !serve && (len(args) != 2 || args[0] != "get-peers") {
			return usagef("want: get-peers INFOHASH|MAGNET, or serve")
		}
		log := logrus.WithField("cmd", "dht")
		boot := df.bootstrapNodes()
		if serve && len(df.bootstrap) == 0 {
			boot = nil // a bootstrap node of its own LAN: others come to it
		}
		n, err := dht.New(dht.Config{Addr: *listen, Bootstrap: boot, StateFile: df.stateFile(log), Log: log})
		if err != nil {
			return fmt.Errorf("start the DHT node: %w", err)
		}
		defer n.Close()
		fmt.Fprintf(cmdStdout, "node %x on %s\n", n.ID(), n.Addr().(*net.UDPAddr))
		ctx, stop := signalContext()
		defer stop()
		if serve {
			tick := time.NewTicker(*every)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return n.Close()
				case <-tick.C:
					fmt.Fprintf(cmdStdout, "%+v\n", n.Stats())
				}
			}
		}
		ih, err := parseInfoHash(args[1])
		if err != nil {
			return err
		}
		if *announce > 65535 {
			return usagef("--announce %d: not a port", *announce)
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		start := time.Now()
		seen := map[netip.AddrPort]bool{}
		var first time.Duration
		n.FindPeers(ctx, ih, uint16(*announce), func(peers []netip.AddrPort) {
			for _, p := range peers {
				if seen[p] {
					continue
				}
				seen[p] = true
				if first == 0 {
					first = time.Since(start)
				}
				fmt.Fprintf(cmdStdout, "%8.3fs  %s\n", time.Since(start).Seconds(), p)
				if *max > 0 && len(seen) >= *max {
					cancel()
				}
			}
		})
		st := n.Stats()
		if len(seen) == 0 {
			fmt.Fprintf(cmdStdout, "no peers in %s (%+v)\n", time.Since(start).Round(time.Millisecond), st)
			return nil
		}
		fmt.Fprintf(cmdStdout, "%d peers, the first after %s (%+v)\n", len(seen), first.Round(time.Millisecond), st)
		return nil
	}
}

// parseInfoHash takes a 40-digit hex info-hash or a magnet link; a link with only a v2 hash
// gives that hash truncated, under which v2 swarms meet (BEP 52).
func parseInfoHash(s string) ([20]byte, error) {
	if metainfo.IsMagnet(s) {
		m, err := metainfo.ParseMagnet(s)
		if err != nil {
			return [20]byte{}, err
		}
		return m.SwarmHash(), nil // a v2 swarm meets under the truncated hash (BEP 52)
	}
	h, err := metainfo.ParseHash(s)
	if err != nil {
		return [20]byte{}, usagef("%v (or give a magnet link)", err)
	}
	return h, nil
}
