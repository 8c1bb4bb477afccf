package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel here has tbf but no netem, so latency is added in user space: a delay line
// per host, like mahimahi's delay shell. Every packet the host sends is routed into a TUN
// device ("dlyo"); this process reads it, holds it for the host's one-way delay and writes
// it into a second TUN device ("dlyi"), from which the kernel forwards it out of eth0 (a
// policy rule sends what comes in on dlyi to a table that routes through eth0). What a
// host receives is not delayed: the round trip between two hosts is the sum of their
// delays, and between a host and the bridge (the test process) it is the host's delay.
// Multicast keeps its direct route on eth0. Shape's tbf on eth0 applies after the delay.

// Delay adds a one-way delay d to everything host h sends; it lasts until the Net is
// removed. The delay line runs in this process: two goroutines per host.
func (nt *Net) Delay(t T, h *Host, d time.Duration) {
	t.Helper()
	out, in, err := openTUNs(h.Name, "dlyo", "dlyi")
	if err != nil {
		t.Fatalf("delay line for %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		// Closing the devices ends the goroutines' reads and writes; the namespace's removal
		// takes the devices themselves.
		out.Close()
		in.Close()
	})
	subnet := fmt.Sprintf("%s/24", subnetAddr(nt.slot, 0))
	src := h.IP.String()
	n := func(args ...string) { ip(t, append([]string{"-n", h.Name}, args...)...) }
	n("link", "set", "dlyo", "up")
	n("link", "set", "dlyi", "up")
	// Forwarding what comes back in on dlyi: its source is our own address, which the
	// kernel calls martian unless told to accept it.
	for _, kv := range [][2]string{
		{"ipv4/ip_forward", "1"}, {"ipv4/conf/all/rp_filter", "0"}, {"ipv4/conf/dlyi/rp_filter", "0"},
		{"ipv4/conf/dlyi/accept_local", "1"}, {"ipv4/conf/all/send_redirects", "0"},
	} {
		run(t, h.Command("sh", "-c", "echo "+kv[1]+" > /proc/sys/net/"+kv[0])...)
	}
	n("route", "add", subnet, "dev", "eth0", "src", src, "table", "100")
	n("route", "add", "default", "via", nt.BridgeIP.String(), "dev", "eth0", "table", "100")
	n("rule", "add", "iif", "dlyi", "lookup", "100", "pref", "100")
	n("route", "del", subnet, "dev", "eth0")
	n("route", "add", subnet, "dev", "dlyo", "src", src)
	n("route", "replace", "default", "dev", "dlyo", "src", src)
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

// openTUNs creates TUN devices (IP packets, no packet info header) with the given names in
// the named network namespace and returns them open. The devices belong to that namespace;
// the descriptors work from any thread.
func openTUNs(ns string, names ...string) (*os.File, *os.File, error) {
	type result struct {
		files []*os.File
		err   error
	}
	res := make(chan result, 1)
	go func() {
		// This thread enters the namespace; it is thrown away afterwards rather than
		// trusted to have come back.
		runtime.LockOSThread()
		var r result
		defer func() { res <- r }()
		target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			r.err = err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			r.err = fmt.Errorf("setns: %w", err)
			return
		}
		for _, name := range names {
			f, err := openTUN(name)
			if err != nil {
				for _, f := range r.files {
					f.Close()
				}
				r.files, r.err = nil, err
				return
			}
			r.files = append(r.files, f)
		}
	}()
	r := <-res
	if r.err != nil {
		return nil, nil, r.err
	}
	return r.files[0], r.files[1], nil
}

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
