package lsd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Linux socket options the syscall package does not name.
const (
	ipMulticastAll   = 0x31 // IP_MULTICAST_ALL
	ipv6MulticastAll = 0x1d // IPV6_MULTICAST_ALL
	soReusePort      = 0xf  // SO_REUSEPORT
)

// openSocket opens a UDP socket for group on one interface: bound to the group's address
// and port (so it reads only that group's datagrams) and to the device (so it reads only
// what arrives there, and sends there), with SO_REUSEADDR and SO_REUSEPORT so that other
// LSD clients on the host (libtorrent, another Service) share the port, joined to the
// group on that interface.
func openSocket(ifi *net.Interface, group netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if group.Addr().Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
				return
			}
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1); serr != nil {
				return
			}
			// Without privilege (CAP_NET_RAW on older kernels) this fails; IP_MULTICAST_ALL
			// off still limits an IPv4 socket to what arrives where it joined.
			if err := syscall.BindToDevice(int(fd), ifi.Name); err != nil && err != syscall.EPERM {
				serr = err
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, group.String())
	if err != nil {
		return nil, fmt.Errorf("listen on %s at %s: %w", ifi.Name, group, err)
	}
	conn := pc.(*net.UDPConn)
	if err := join(conn, ifi, group.Addr()); err != nil {
		conn.Close()
		return nil, fmt.Errorf("join %s on %s: %w", group.Addr(), ifi.Name, err)
	}
	return conn, nil
}

// join adds the group membership on ifi and makes ifi the interface multicast leaves by.
func join(conn *net.UDPConn, ifi *net.Interface, group netip.Addr) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		s := int(fd)
		if group.Is4() {
			mreq := &syscall.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifi.Index)}
			if serr = syscall.SetsockoptIPMreqn(s, syscall.IPPROTO_IP, syscall.IP_ADD_MEMBERSHIP, mreq); serr != nil {
				return
			}
			if serr = syscall.SetsockoptIPMreqn(s, syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, &syscall.IPMreqn{Ifindex: int32(ifi.Index)}); serr != nil {
				return
			}
			// Only the groups this socket joined, not every group some socket joined.
			serr = syscall.SetsockoptInt(s, syscall.IPPROTO_IP, ipMulticastAll, 0)
			return
		}
		mreq := &syscall.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifi.Index)}
		if serr = syscall.SetsockoptIPv6Mreq(s, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, mreq); serr != nil {
			return
		}
		if serr = syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_IF, ifi.Index); serr != nil {
			return
		}
		// Kernels before 4.20 lack it; there SO_BINDTODEVICE is what keeps interfaces apart.
		syscall.SetsockoptInt(s, syscall.IPPROTO_IPV6, ipv6MulticastAll, 0)
	})
	if err != nil {
		return err
	}
	return serr
}

// interfaces resolves names, or picks every interface that is up, multicast-capable and
// not loopback when names is empty.
func interfaces(names []string) ([]net.Interface, error) {
	if len(names) > 0 {
		var out []net.Interface
		for _, n := range names {
			ifi, err := net.InterfaceByName(n)
			if err != nil {
				return nil, fmt.Errorf("interface %s: %w", n, err)
			}
			out = append(out, *ifi)
		}
		return out, nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	return out, nil
}
