package main

// Finding peers without trackers: the DHT node, local service discovery and peer exchange
// that `get`, `seed` and `mount` run beside the engine.

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"torrentfs/dht"
	"torrentfs/internal/udpmux"
	"torrentfs/lsd"
	"torrentfs/portmap"
	"torrentfs/swarm"
)

// defaultBootstrap are the well-known DHT routers a user's node starts from when it has no
// saved routing table. Tests and scripts always pass --dht-bootstrap or --no-dht.
var defaultBootstrap = []string{
	"router.bittorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"router.utorrent.com:6881",
	"dht.libtorrent.org:25401",
}

// discoveryFlags are the engine flags for finding peers without trackers.
type discoveryFlags struct {
	noDHT     bool
	noPEX     bool
	noLSD     bool
	bootstrap stringsFlag
	dhtState  string
}

func (f *discoveryFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.noDHT, "no-dht", false, "do not join the DHT (BEP 5)")
	fs.BoolVar(&f.noPEX, "no-pex", false, "do not exchange peers with peers (BEP 11)")
	fs.BoolVar(&f.noLSD, "no-lsd", false, "do not look for peers on the local network (BEP 14)")
	f.registerDHT(fs)
}

// registerDHT declares the flags of the DHT node itself, shared with `torrentfs dht`.
func (f *discoveryFlags) registerDHT(fs *flag.FlagSet) {
	fs.Var(&f.bootstrap, "dht-bootstrap", "`HOST:PORT` of a DHT node to start from (repeatable; replaces the default routers)")
	fs.StringVar(&f.dhtState, "dht-state", "", "`FILE` keeping the DHT routing table between runs (default $XDG_STATE_HOME/torrentfs/dht.state; \"none\" keeps nothing)")
}

// stateFile is where the routing table is kept ("" for nowhere), its directory made.
func (f *discoveryFlags) stateFile(log *logrus.Entry) string {
	state := f.dhtState
	switch state {
	case "":
		state = defaultDHTState()
	case "none":
		return ""
	}
	if state != "" {
		if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
			log.WithError(err).Warn("the DHT routing table will not be kept")
			return ""
		}
	}
	return state
}

// bootstrapNodes are --dht-bootstrap's nodes, else the public routers.
func (f *discoveryFlags) bootstrapNodes() []string {
	if len(f.bootstrap) > 0 {
		return f.bootstrap
	}
	return defaultBootstrap
}

// engine is a swarm.Client with the DHT node and LSD service that feed it peers, the
// router's port mappings that let peers reach it, and the UDP socket uTP and the DHT share.
type engine struct {
	*swarm.Client
	dht   *dht.Node
	lsd   *lsd.Service
	ports *portmap.Mapper
	mux   *udpmux.Mux // nil with --no-utp: the DHT then has a socket of its own
}

// Close stops the torrents first, then the DHT node (saving its routing table) and LSD,
// and removes the port mappings last.
func (e *engine) Close() error {
	err := e.Client.Close()
	if e.dht != nil {
		err = errors.Join(err, e.dht.Close())
		if err != nil {
			return fmt.Errorf("start the DHT node: %w", err)
		}
		e.dht = nil
	}
	if e.lsd != nil {
		err = errors.Join(err, e.lsd.Close())
		e.lsd = nil
	}
	if e.ports != nil {
		err = errors.Join(err, e.ports.Close())
		e.ports = nil
	}
	if e.mux != nil {
		err = errors.Join(err, e.mux.Close())
		e.mux = nil
	}
	return err
}

// startDiscovery starts the DHT node on the UDP port of the client's TCP port number (on
// the socket it shares with uTP, or a free one when that is taken with uTP off) and LSD, and hands them to the client as peer sources.
func (f *discoveryFlags) startDiscovery(e *engine, log *logrus.Entry) error {
	if e.Addr() == nil {
		return nil // not listening: nobody could connect to what we announce
	}
	tcp := addrPortOf(e.Addr())
	ip := tcp.Addr().Unmap()
	if !f.noDHT {
		addr := netip.AddrPortFrom(ip, tcp.Port()).String()
		if ip.IsUnspecified() {
			addr = fmt.Sprintf(":%d", tcp.Port()) // both families (BEP 32) where the host has IPv6
		}
		cfg := dht.Config{
			Addr:      addr,
			Bootstrap: f.bootstrapNodes(),
			StateFile: f.stateFile(log),
			Log:       log.WithField("part", "dht"),
		}
		if !ip.IsUnspecified() && !ip.IsPrivate() && !ip.IsLoopback() {
			cfg.ExternalIP = ip // BEP 42: a public address we listen on is our external one
		}
		if ext := e.mappedExternalIP(); ext.IsValid() {
			cfg.ExternalIP = ext // the router's, when it told us
		}
		if e.mux != nil {
			cfg.Conn = e.mux.KRPC() // the port of uTP, so it is never busy
		}
		n, err := dht.New(cfg)
		if err != nil && cfg.Conn == nil {
			log.WithError(err).Warnf("UDP port %d is busy; the DHT node takes a free one", tcp.Port())
			if ip.IsUnspecified() {
				cfg.Addr = ":0"
			} else {
				cfg.Addr = netip.AddrPortFrom(ip, 0).String()
			}
			if n, err = dht.New(cfg); err != nil {
				return fmt.Errorf("start the DHT node: %w", err)
			}
		}
		if err != nil {
			return fmt.Errorf("start the DHT node: %w", err)
		}
		e.dht = n
		port := uint16(n.Addr().(*net.UDPAddr).Port)
		log.Infof("DHT node on UDP port %d, id %x", port, n.ID())
		e.AddSource(swarm.PeerSource{Name: "dht", Find: n.FindPeers})
		e.SetDHT(port, n.AddNode)
	}
	if !f.noLSD {
		s, err := lsd.New(lsd.Config{Port: tcp.Port(), Log: log.WithField("part", "lsd")})
		if err != nil {
			// No multicast-capable interface (a container, a jail): not worth failing for.
			log.WithError(err).Warn("local service discovery is off")
		} else {
			e.lsd = s
			e.AddSource(swarm.PeerSource{Name: "lsd", Find: s.FindPeers})
		}
	}
	return nil
}

// defaultDHTState is where the routing table is kept: $XDG_STATE_HOME/torrentfs/dht.state,
// else ~/.local/state/torrentfs/dht.state; "" when neither is known.
func defaultDHTState() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "torrentfs", "dht.state")
}

// addrPortOf is a listening address (TCP's or UDP's) as an AddrPort.
func addrPortOf(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
