package portmap

// NAT-PMP (RFC 6886): requests are UDP datagrams to the gateway's port 5351, retransmitted
// after 250 ms, then 500 ms, 1 s, ... until an answer or our overall timeout.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

const (
	natpmpServerPort = 5351
	natpmpFirstWait  = 250 * time.Millisecond
	natpmpTimeout    = 2 * time.Second // per request, whatever ctx allows

	opExternal = 0
	opMapUDP   = 1
	opMapTCP   = 2
	opReply    = 128 // added to the request's opcode in its reply
)

// natpmpResult is a reply's result code.
type natpmpResult uint16

func (r natpmpResult) Error() string {
	switch r {
	case 1:
		return "NAT-PMP: unsupported version"
	case 2:
		return "NAT-PMP: not authorized (mapping turned off on the router)"
	case 3:
		return "NAT-PMP: network failure (the router has no external address)"
	case 4:
		return "NAT-PMP: out of resources"
	case 5:
		return "NAT-PMP: unsupported opcode"
	}
	return fmt.Sprintf("NAT-PMP: result code %d", uint16(r))
}

// natpmpReply is a parsed reply. Fields past the epoch are set only for result 0.
type natpmpReply struct {
	op       byte // the request's opcode + 128
	result   natpmpResult
	epoch    uint32 // seconds since the router's mapping table was (re)started
	external netip.Addr
	internal uint16
	mapped   uint16
	lifetime uint32 // seconds
}

var errMalformed = errors.New("malformed NAT-PMP reply")

// parseNATPMP decodes a reply from the gateway; anything else is errMalformed. An error
// reply may stop after the epoch (RFC 6886 3.5), a successful one may not.
func parseNATPMP(b []byte) (natpmpReply, error) {
	if len(b) < 8 || b[0] != 0 || b[1] < opReply {
		return natpmpReply{}, errMalformed
	}
	r := natpmpReply{
		op:     b[1],
		result: natpmpResult(binary.BigEndian.Uint16(b[2:])),
		epoch:  binary.BigEndian.Uint32(b[4:]),
	}
	if r.result != 0 {
		return r, nil
	}
	switch r.op {
	case opReply + opExternal:
		if len(b) < 12 {
			return natpmpReply{}, errMalformed
		}
		r.external = netip.AddrFrom4([4]byte(b[8:12]))
	case opReply + opMapUDP, opReply + opMapTCP:
		if len(b) < 16 {
			return natpmpReply{}, errMalformed
		}
		r.internal = binary.BigEndian.Uint16(b[8:])
		r.mapped = binary.BigEndian.Uint16(b[10:])
		r.lifetime = binary.BigEndian.Uint32(b[12:])
	default:
		return natpmpReply{}, errMalformed
	}
	return r, nil
}

// natpmpClient asks one gateway. It keeps no socket between requests.
type natpmpClient struct {
	gw netip.AddrPort
}

func (c *natpmpClient) method() Method { return NATPMP }

func (c *natpmpClient) externalAddr(ctx context.Context) (netip.Addr, error) {
	r, err := c.call(ctx, []byte{0, opExternal}, func(natpmpReply) bool { return true })
	if err != nil {
		return netip.Addr{}, err
	}
	return r.external, nil
}

func (c *natpmpClient) add(ctx context.Context, proto string, internal, external uint16, lifetime time.Duration) (uint16, time.Duration, error) {
	secs := uint32(min(max(lifetime/time.Second, 1), 1<<31))
	r, err := c.mapRequest(ctx, proto, internal, external, secs)
	if err != nil {
		return 0, 0, err
	}
	if r.lifetime == 0 || r.mapped == 0 {
		return 0, 0, fmt.Errorf("NAT-PMP: router granted external port %d for %d s", r.mapped, r.lifetime)
	}
	return r.mapped, time.Duration(r.lifetime) * time.Second, nil
}

// remove asks for lifetime 0, which deletes the mapping; the suggested port must be 0.
func (c *natpmpClient) remove(ctx context.Context, proto string, internal, _ uint16) error {
	_, err := c.mapRequest(ctx, proto, internal, 0, 0)
	return err
}

func (c *natpmpClient) mapRequest(ctx context.Context, proto string, internal, external uint16, secs uint32) (natpmpReply, error) {
	op := byte(opMapUDP)
	if proto == "tcp" {
		op = opMapTCP
	}
	req := make([]byte, 12)
	req[1] = op
	binary.BigEndian.PutUint16(req[4:], internal)
	binary.BigEndian.PutUint16(req[6:], external)
	binary.BigEndian.PutUint32(req[8:], secs)
	// A reply for another of our ports (a late answer to an earlier request) is not ours.
	return c.call(ctx, req, func(r natpmpReply) bool { return r.result != 0 || r.internal == internal })
}

// call sends req until a well-formed reply to its opcode that ours accepts arrives, and
// returns it, or its result code as the error. A connected socket hears only the gateway's
// port and reports an ICMP "port unreachable" as ECONNREFUSED: nobody serves NAT-PMP there,
// so there is no point in waiting.
func (c *natpmpClient) call(ctx context.Context, req []byte, ours func(natpmpReply) bool) (natpmpReply, error) {
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(c.gw))
	if err != nil {
		return natpmpReply{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	deadline := time.Now().Add(natpmpTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	wantOp := opReply + req[1]
	buf := make([]byte, 64) // replies are 16 bytes at most; a longer one is cut and judged
	refused := fmt.Errorf("nothing serves NAT-PMP at %s", c.gw)
	// A probe's own deadline running out is the same news as ours: nobody answered.
	ctxErr := func() error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("no NAT-PMP reply from %s", c.gw)
		}
		return ctx.Err()
	}
	for wait := natpmpFirstWait; ; wait *= 2 {
		if ctx.Err() != nil {
			return natpmpReply{}, ctxErr()
		}
		if _, err := conn.Write(req); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return natpmpReply{}, refused
			}
			return natpmpReply{}, fmt.Errorf("NAT-PMP request to %s: %w", c.gw, err)
		}
		until := time.Now().Add(wait)
		if until.After(deadline) {
			until = deadline
		}
		conn.SetReadDeadline(until)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return natpmpReply{}, ctxErr()
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					return natpmpReply{}, refused
				}
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					return natpmpReply{}, fmt.Errorf("NAT-PMP reply from %s: %w", c.gw, err)
				}
				if !time.Now().Before(deadline) {
					return natpmpReply{}, fmt.Errorf("no NAT-PMP reply from %s", c.gw)
				}
				break // retransmit
			}
			r, err := parseNATPMP(buf[:n])
			if err != nil || r.op != wantOp || !ours(r) {
				continue // RFC 6886 3.1: not a reply to this request; keep listening
			}
			if r.result != 0 {
				return r, r.result
			}
			return r, nil
		}
	}
}
