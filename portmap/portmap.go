// Package portmap asks the home router in front of us to forward our listening ports, so
// peers on the Internet can reach a client behind NAT. It speaks NAT-PMP (RFC 6886, our own
// code) and UPnP IGD (WANIPConnection or WANPPPConnection, through goupnp), maps a TCP and a
// UDP port, renews the mappings before they lapse and removes them on Close.
//
// It only ever talks to the local network: NAT-PMP goes to the gateway of the default route,
// SSDP searches are multicast on the LAN (TTL 1), and a UPnP device is used only if it is
// that gateway. Without a default route Start fails at once, sending nothing.
//
// cmd/torrentfs starts one Mapper per process, before the DHT node so that the external
// address it learns can seed the node's secure ID (BEP 42). A Mapper owns its mappings: one
// goroutine renews them, and Status reads a snapshot that goroutine publishes.
package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Method is a way of asking the router for a mapping.
type Method int

const (
	Auto   Method = iota // NAT-PMP, else UPnP IGD
	NATPMP               // NAT-PMP only (RFC 6886)
	UPnP                 // UPnP IGD only
)

func (m Method) String() string {
	switch m {
	case Auto:
		return "auto"
	case NATPMP:
		return "NAT-PMP"
	case UPnP:
		return "UPnP"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Config says what to map and where to ask.
type Config struct {
	TCPPort uint16 // internal TCP port to map; 0 maps none
	UDPPort uint16 // internal UDP port to map; 0 maps none

	// Gateway is the router to ask; the zero value means the default route's gateway.
	Gateway netip.Addr
	// Lifetime is what each mapping is asked for (default 1 h); mappings are renewed at
	// half of what the router grants.
	Lifetime time.Duration
	Method   Method
	// Description is the UPnP mapping's label (default "torrentfs").
	Description string
	Log         *logrus.Entry

	natpmpPort uint16 // tests: NAT-PMP server port, 0 = 5351
}

// Errors Start wraps.
var (
	ErrNoGateway = errors.New("no default route, so no router to ask")
	ErrNotFound  = errors.New("no NAT-PMP or UPnP IGD router answered")
)

// Status is what the router gave us.
type Status struct {
	Method   Method     // NATPMP or UPnP
	External netip.Addr // the router's external address; invalid when it would not say
	TCP      uint16     // external port forwarded to Config.TCPPort; 0 = not mapped
	UDP      uint16     // external port forwarded to Config.UDPPort; 0 = not mapped
	Renewals int        // rounds in which every mapping was renewed, so far
}

const (
	defaultLifetime = time.Hour
	probeTimeout    = 2 * time.Second // each of NAT-PMP and SSDP while looking for a router
	closeTimeout    = 3 * time.Second // removing the mappings on Close
	minRenewWait    = time.Second
)

// router is one protocol's way of asking the gateway for mappings.
type router interface {
	method() Method
	externalAddr(ctx context.Context) (netip.Addr, error)
	// add maps internal to (preferably) external on the router and returns the external
	// port it got and for how long.
	add(ctx context.Context, proto string, internal, external uint16, lifetime time.Duration) (uint16, time.Duration, error)
	remove(ctx context.Context, proto string, internal, external uint16) error
}

// mapping is one forwarded port, owned by the Mapper's goroutine.
type mapping struct {
	proto    string // "tcp" or "udp"
	internal uint16
	external uint16
	granted  time.Duration
	renewAt  time.Time
}

// Mapper holds the mappings a router gave us and keeps them alive until Close.
type Mapper struct {
	r        router
	lifetime time.Duration
	log      *logrus.Entry
	status   atomic.Pointer[Status]

	maps []*mapping // owned by run

	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// Start finds a router that maps ports (NAT-PMP first, then UPnP IGD, each given about 2 s),
// maps cfg's ports on it and keeps them mapped until Close. ctx bounds the search and the
// first mappings only. It fails with ErrNoGateway or ErrNotFound (wrapped) when there is
// nobody to ask, and with the router's refusal when it maps none of the ports.
func Start(ctx context.Context, cfg Config) (*Mapper, error) {
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = defaultLifetime
	}
	if cfg.Description == "" {
		cfg.Description = "torrentfs"
	}
	if cfg.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		cfg.Log = logrus.NewEntry(l)
	}
	if cfg.natpmpPort == 0 {
		cfg.natpmpPort = natpmpServerPort
	}
	gw := cfg.Gateway
	if !gw.IsValid() {
		var err error
		if gw, err = defaultGateway(procRoute); err != nil {
			return nil, err
		}
	}
	r, ext, err := findRouter(ctx, cfg, gw.Unmap())
	if err != nil {
		return nil, err
	}
	m := &Mapper{
		r:        r,
		lifetime: cfg.Lifetime,
		log:      cfg.Log.WithField("method", r.method()),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	st := Status{Method: r.method(), External: ext}
	var errs []error
	for _, p := range []struct {
		proto string
		port  uint16
		ext   *uint16
	}{{"tcp", cfg.TCPPort, &st.TCP}, {"udp", cfg.UDPPort, &st.UDP}} {
		if p.port == 0 {
			continue
		}
		mp := &mapping{proto: p.proto, internal: p.port, external: p.port}
		if err := m.renew(ctx, mp); err != nil {
			errs = append(errs, err)
			continue
		}
		m.maps = append(m.maps, mp)
		*p.ext = mp.external
	}
	if len(m.maps) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("%s router %s: %w", r.method(), gw, errors.Join(errs...))
	}
	for _, err := range errs {
		m.log.WithError(err).Warn("port mapping refused")
	}
	m.status.Store(&st)
	m.log.Infof("port mapping: external address %v, TCP %d -> %d, UDP %d -> %d",
		ext, st.TCP, cfg.TCPPort, st.UDP, cfg.UDPPort)
	go m.run()
	return m, nil
}

// findRouter asks the gateway over NAT-PMP while an SSDP search runs beside it, and takes
// NAT-PMP when it answers: it is one UDP round trip per request, UPnP is HTTP and XML.
func findRouter(ctx context.Context, cfg Config, gw netip.Addr) (router, netip.Addr, error) {
	type found struct {
		r   router
		ext netip.Addr
		err error
	}
	var upnpc chan found
	if cfg.Method == Auto || cfg.Method == UPnP {
		upnpc = make(chan found, 1)
		uctx, cancel := context.WithCancel(ctx)
		defer func() {
			cancel()
			if upnpc != nil {
				<-upnpc // the search stops with its context; never leave it running
			}
		}()
		go func() {
			r, ext, err := discoverUPnP(uctx, gw, cfg.Description, cfg.Log)
			upnpc <- found{r, ext, err}
		}()
	}
	var pmpErr error
	if cfg.Method == Auto || cfg.Method == NATPMP {
		c := &natpmpClient{gw: netip.AddrPortFrom(gw, cfg.natpmpPort)}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		ext, err := c.externalAddr(pctx)
		cancel()
		if err == nil {
			return c, ext, nil
		}
		pmpErr = fmt.Errorf("NAT-PMP: %w", err)
		if upnpc == nil {
			return nil, netip.Addr{}, fmt.Errorf("%w at %s (%v)", ErrNotFound, gw, pmpErr)
		}
	}
	f := <-upnpc
	upnpc = nil
	if f.err != nil {
		err := fmt.Errorf("UPnP: %w", f.err)
		if pmpErr != nil {
			err = fmt.Errorf("%v; %v", pmpErr, err)
		}
		return nil, netip.Addr{}, fmt.Errorf("%w at %s (%v)", ErrNotFound, gw, err)
	}
	return f.r, f.ext, nil
}

// renew asks for mp again (also its first time), keeping its external port if the router
// lets us, and sets when to ask next.
func (m *Mapper) renew(ctx context.Context, mp *mapping) error {
	ext, granted, err := m.r.add(ctx, mp.proto, mp.internal, mp.external, m.lifetime)
	if err != nil {
		return fmt.Errorf("map %s port %d: %w", mp.proto, mp.internal, err)
	}
	if ext != mp.external {
		m.log.Infof("port mapping: %s port %d is now external port %d", mp.proto, mp.internal, ext)
	}
	mp.external, mp.granted = ext, granted
	mp.renewAt = time.Now().Add(max(granted/2, minRenewWait))
	return nil
}

// run renews the mappings at half their lifetime until Close, then removes them.
func (m *Mapper) run() {
	defer close(m.done)
	t := time.NewTimer(m.nextRenewal())
	defer t.Stop()
	for {
		select {
		case <-m.closing:
			m.removeAll()
			return
		case <-t.C:
		}
		m.renewDue()
		t.Reset(m.nextRenewal())
	}
}

func (m *Mapper) nextRenewal() time.Duration {
	var next time.Time
	for _, mp := range m.maps {
		if next.IsZero() || mp.renewAt.Before(next) {
			next = mp.renewAt
		}
	}
	return max(time.Until(next), 0)
}

// renewDue renews every mapping once the first is due: they were made together, and one
// round trip more beats a wakeup more. Renewals counts the rounds in which all succeeded. A
// failed renewal is tried again at an eighth of its lifetime: the router may be rebooting.
func (m *Mapper) renewDue() {
	ctx, cancel := context.WithTimeout(context.Background(), m.lifetime/2+probeTimeout)
	defer cancel()
	go func() {
		select {
		case <-m.closing:
			cancel() // Close does not wait for a router that stopped answering
		case <-ctx.Done():
		}
	}()
	st := *m.status.Load()
	ok := true
	for _, mp := range m.maps {
		if err := m.renew(ctx, mp); err != nil {
			ok = false
			m.log.WithError(err).Warn("port mapping: renewal failed")
			mp.renewAt = time.Now().Add(max(mp.granted/8, minRenewWait))
			continue
		}
		m.log.Debugf("port mapping: renewed %s %d -> %d for %v", mp.proto, mp.external, mp.internal, mp.granted)
		switch mp.proto {
		case "tcp":
			st.TCP = mp.external
		case "udp":
			st.UDP = mp.external
		}
	}
	if ok {
		st.Renewals++
	}
	if ext, err := m.r.externalAddr(ctx); err == nil && ext != st.External {
		m.log.Infof("port mapping: external address is now %v", ext)
		st.External = ext
	}
	m.status.Store(&st)
}

func (m *Mapper) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, mp := range m.maps {
		wg.Go(func() {
			if err := m.r.remove(ctx, mp.proto, mp.internal, mp.external); err != nil {
				m.log.WithError(err).Warnf("port mapping: could not remove %s port %d", mp.proto, mp.external)
			}
		})
	}
	wg.Wait()
}

// Status returns what the router has given us, as of the last renewal.
func (m *Mapper) Status() Status {
	return *m.status.Load()
}

// Close removes the mappings from the router, giving it about 3 s, and stops renewing.
func (m *Mapper) Close() error {
	m.closeOnce.Do(func() { close(m.closing) })
	<-m.done
	return nil
}
