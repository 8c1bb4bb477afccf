package main

// Asking the home router to forward our ports (NAT-PMP or UPnP IGD), so peers outside the
// LAN can connect to us; the external address it reports seeds the DHT node's ID (BEP 42).

import (
	"context"
	"errors"
	"flag"
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/portmap"
)

// portMapTimeout bounds the search for a router at start: the mapper gives NAT-PMP and
// SSDP about 2 s each, side by side.
const portMapTimeout = 5 * time.Second

type portMapFlags struct {
	noPortMap bool
}

func (f *portMapFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.noPortMap, "no-port-map", false, "do not ask the router to forward our ports (NAT-PMP, UPnP IGD)")
}

// startPortMap maps the client's TCP port, and the same UDP port for the DHT, on the
// router. Finding none is normal (no NAT, or mapping turned off) and is one log line.
func (f *portMapFlags) startPortMap(e *engine, noDHT bool, log *logrus.Entry) {
	if f.noPortMap || e.Addr() == nil {
		return
	}
	tcp := addrPortOf(e.Addr())
	if tcp.Addr().Unmap().IsLoopback() {
		return // nobody outside could reach what we forward
	}
	cfg := portmap.Config{TCPPort: tcp.Port(), Log: log.WithField("part", "portmap")}
	if !noDHT || e.mux != nil {
		cfg.UDPPort = tcp.Port() // where uTP and the DHT node listen (the DHT alone may move if it is busy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), portMapTimeout)
	defer cancel()
	m, err := portmap.Start(ctx, cfg)
	switch {
	case errors.Is(err, portmap.ErrNoGateway):
		log.Debug("port mapping: no default route")
	case errors.Is(err, portmap.ErrNotFound):
		log.Infof("port mapping: no NAT-PMP or UPnP router found; peers outside the LAN reach us only if TCP port %d is forwarded", tcp.Port())
		log.WithError(err).Debug("port mapping")
	case err != nil:
		log.WithError(err).Warn("port mapping failed")
	default:
		e.ports = m
	}
}

// mappedExternalIP is the router's external address when it is a public one; a router
// behind another NAT reports a private address, which is not ours to claim.
func (e *engine) mappedExternalIP() netip.Addr {
	if e.ports == nil {
		return netip.Addr{}
	}
	ip := e.ports.Status().External
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.Is4In6() {
		return netip.Addr{}
	}
	return ip
}
