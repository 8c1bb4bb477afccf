package netns

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel here has tbf but no netem, so latency is added in user space: a delay line
// per host, like mahimahi's delay shell. Every IPv4 packet the host sends is stolen where
// it enters the test's namespace, at the ingress of the host's veth end on the bridge (a
// clsact qdisc with a u32 filter whose mirred action redirects it into a TUN device,
// "<veth>o"); this process reads it there, holds it for the host's one-way delay and
// writes it into a second TUN device ("<veth>i"), from which the test's namespace routes
// it on: out of the bridge to another host, or to itself when it was for the bridge's
// address. What a host receives is not delayed: the round trip between two hosts is the
// sum of their delays, and between a host and the bridge (the test process) it is the
// host's delay. Multicast goes straight onto the bridge, undelayed.
//
// Taking the packets outside the host, rather than routing them into a TUN device inside
// it, keeps the delay whatever the host's programs do with their sockets: libtorrent
// (qBittorrent, btfs) binds its sockets to the device of its address (SO_BINDTODEVICE),
// and a bound socket sends straight out of eth0, past any route. Shape's tbf on the
// host's eth0 applies before the delay, as a link's queue comes before its propagation.

// Delay adds a one-way delay d to everything host h sends; it lasts until the Net is
// removed. The delay line runs in this process: two goroutines per host.
func (nt *Net) Delay(t T, h *Host, d time.Duration) {
	t.Helper()
	outName, inName := h.Veth+"o", h.Veth+"i"
	out, err := openTUN(outName)
	if err != nil {
		t.Fatalf("delay line for %s: %v", h.Name, err)
	}
	in, err := openTUN(inName)
	if err != nil {
		out.Close()
		t.Fatalf("delay line for %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		// Closing the devices ends the goroutines' reads and writes and, the devices not
		// being persistent, removes them; the veth's removal takes its filters.
		out.Close()
		in.Close()
	})
	ip(t, "link", "set", outName, "up")
	ip(t, "link", "set", inName, "up")
	// What comes out of the delay line is forwarded: only what arrives on inName (per
	// device forwarding), whatever its source (no reverse-path filter there).
	for _, kv := range [][2]string{{"forwarding", "1"}, {"rp_filter", "0"}} {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+inName+"/"+kv[0], []byte(kv[1]), 0o644); err != nil {
			t.Fatalf("delay line for %s: %v", h.Name, err)
		}
	}
	run(t, "tc", "qdisc", "add", "dev", h.Veth, "clsact")
	// Only what is for the LAN's addresses (hosts and bridge): this kernel has no gact,
	// whose "ok" would let multicast through by a filter of its own.
	subnet := subnetAddr(nt.slot, 0).String() + "/24"
	run(t, "tc", "filter", "add", "dev", h.Veth, "ingress", "prio", "1", "protocol", "ip", "u32",
		"match", "ip", "dst", subnet, "action", "mirred", "egress", "redirect", "dev", outName)
	go delayLine(out, in, d)
}

// delayLine moves packets from out to in, each d after it was read, in order. A queue of
// over 64k packets in flight drops the newest, as a full router queue would.
func delayLine(out, in *os.File, d time.Duration) {
	type held struct {
		at  time.Time
		pkt []byte
	}
	q := make(chan held, 1<<16)
	go func() {
		defer close(q)
		buf := make([]byte, 65536)
		for {
			n, err := out.Read(buf)
			if err != nil {
				return
			}
			select {
			case q <- held{time.Now().Add(d), append([]byte(nil), buf[:n]...)}:
			default:
			}
		}
	}()
	for h := range q {
		if w := time.Until(h.at); w > 0 {
			time.Sleep(w)
		}
		if _, err := in.Write(h.pkt); err != nil && errors.Is(err, os.ErrClosed) {
			for range q {
			}
			return
		}
	}
}

// openTUN creates a TUN device (IP packets, no packet info header) with the given name in
// this process's network namespace and returns it open.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:unix.IFNAMSIZ-1], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TUN | unix.IFF_NO_PI
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TUNSETIFF), uintptr(unsafe.Pointer(&req[0]))); errno != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("create TUN %s: %w", name, errno)
	}
	// Non-blocking, so the runtime's poller serves it and Close ends a read under way.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "tun:"+name+":"+strconv.Itoa(fd)), nil
}
