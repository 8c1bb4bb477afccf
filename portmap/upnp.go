package portmap

// UPnP IGD through goupnp: an SSDP search on the LAN, the gateway's device description,
// then SOAP calls to its WANIPConnection (v2 or v1) or WANPPPConnection service.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/httpu"
	"github.com/huin/goupnp/soap"
	"github.com/huin/goupnp/ssdp"
	"github.com/sirupsen/logrus"
)

const (
	igdDevice = "urn:schemas-upnp-org:device:InternetGatewayDevice:1" // v2 devices answer it too
	ssdpPort  = 1900

	// UPnP error codes (IGD WANIPConnection spec).
	upnpConflict      = 718 // ConflictInMappingEntry
	upnpOnlyPermanent = 725 // OnlyPermanentLeasesSupported
	upnpPortTries     = 4   // the asked port, then random ones, when the router has it taken
)

// lanHTTP talks to the router directly: an HTTP proxy from the environment cannot reach
// a LAN address on our behalf.
var lanHTTP = http.Client{Transport: &http.Transport{Proxy: nil, ResponseHeaderTimeout: 5 * time.Second}}

func init() {
	// goupnp fetches device descriptions with this client; the process is ours.
	goupnp.HTTPClientDefault = &lanHTTP
}

// igdService is what the three connection services have in common.
type igdService interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
}

type upnpRouter struct {
	svc   igdService
	local string // our address on the LAN, the mappings' internal client
	desc  string
}

// discoverUPnP searches the LAN for an Internet gateway device and returns the gateway's
// WAN connection service with our external address. Only a device at gw is used: a LAN
// host answering SSDP may point anywhere.
func discoverUPnP(ctx context.Context, gw netip.Addr, desc string, log *logrus.Entry) (router, netip.Addr, error) {
	local, err := localAddrTo(gw)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	hc, err := httpu.NewHTTPUClientAddr(local.String())
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("SSDP socket: %w", err)
	}
	defer hc.Close()
	sctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	resps, err := ssdp.RawSearch(sctx, hc, igdDevice, 2)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("SSDP search: %w", err)
	}
	if ctx.Err() != nil {
		return nil, netip.Addr{}, ctx.Err()
	}
	var errs []error
	for _, resp := range resps {
		loc, err := resp.Location()
		if err != nil || !sameHost(loc, gw) {
			log.Debugf("UPnP: ignoring a device at %v: not the gateway %s", loc, gw)
			continue
		}
		r, ext, err := openIGD(ctx, loc, gw, local, desc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return r, ext, nil
	}
	if len(errs) > 0 {
		return nil, netip.Addr{}, errors.Join(errs...)
	}
	return nil, netip.Addr{}, fmt.Errorf("no Internet gateway device at %s answered the SSDP search", gw)
}

// openIGD reads the device description at loc and returns its first WAN connection
// service that tells our external address.
func openIGD(ctx context.Context, loc *url.URL, gw, local netip.Addr, desc string) (router, netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*probeTimeout)
	defer cancel()
	root, err := goupnp.DeviceByURLCtx(ctx, loc)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("UPnP device description: %w", err)
	}
	var svcs []igdService
	var clients []*goupnp.ServiceClient
	if cs, err := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			svcs, clients = append(svcs, c), append(clients, &c.ServiceClient)
		}
	}
	if cs, err := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			svcs, clients = append(svcs, c), append(clients, &c.ServiceClient)
		}
	}
	if cs, err := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc); err == nil {
		for _, c := range cs {
			svcs, clients = append(svcs, c), append(clients, &c.ServiceClient)
		}
	}
	var errs []error
	for i, svc := range svcs {
		sc := clients[i].SOAPClient
		if !sameHost(&sc.EndpointURL, gw) {
			continue // a description may send control elsewhere; we talk to the gateway only
		}
		sc.HTTPClient = lanHTTP
		s, err := svc.GetExternalIPAddressCtx(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("GetExternalIPAddress at %s: %w", &sc.EndpointURL, err))
			continue
		}
		ext, _ := netip.ParseAddr(strings.TrimSpace(s)) // "" while the WAN link is down
		return &upnpRouter{svc: svc, local: local.String(), desc: desc}, ext, nil
	}
	if len(errs) == 0 {
		return nil, netip.Addr{}, fmt.Errorf("%s has no WAN connection service on the gateway", loc)
	}
	return nil, netip.Addr{}, errors.Join(errs...)
}

func sameHost(u *url.URL, gw netip.Addr) bool {
	a, err := netip.ParseAddr(u.Hostname())
	return err == nil && a.Unmap() == gw
}

// localAddrTo is our address on the link to gw. Connecting a UDP socket sends nothing.
func localAddrTo(gw netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, ssdpPort)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to the gateway %s: %w", gw, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func (u *upnpRouter) method() Method { return UPnP }

func (u *upnpRouter) externalAddr(ctx context.Context) (netip.Addr, error) {
	s, err := u.svc.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(strings.TrimSpace(s))
}

// add maps external (else a random port, when the router has it taken) to our internal
// port. Routers that take only permanent leases get one, renewed all the same.
func (u *upnpRouter) add(ctx context.Context, proto string, internal, external uint16, lifetime time.Duration) (uint16, time.Duration, error) {
	lease := uint32(min(max(lifetime/time.Second, 1), 604800)) // the IGD v2 maximum: a week
	p := strings.ToUpper(proto)
	var err error
	for try := range upnpPortTries {
		if try > 0 {
			external = uint16(1024 + rand.IntN(65536-1024))
		}
		err = u.svc.AddPortMappingCtx(ctx, "", external, p, internal, u.local, true, u.desc, lease)
		if upnpCode(err) == upnpOnlyPermanent {
			lease = 0
			err = u.svc.AddPortMappingCtx(ctx, "", external, p, internal, u.local, true, u.desc, lease)
		}
		if upnpCode(err) != upnpConflict {
			break
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("UPnP AddPortMapping: %w", err)
	}
	return external, lifetime, nil
}

func (u *upnpRouter) remove(ctx context.Context, proto string, _, external uint16) error {
	if err := u.svc.DeletePortMappingCtx(ctx, "", external, strings.ToUpper(proto)); err != nil {
		return fmt.Errorf("UPnP DeletePortMapping: %w", err)
	}
	return nil
}

// upnpCode is the UPnP error code in a SOAP fault, 0 for anything else.
func upnpCode(err error) int {
	var f *soap.SOAPFaultError
	if errors.As(err, &f) {
		return f.Detail.UPnPError.Errorcode
	}
	return 0
}
