package portmap

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// procRoute is the kernel's IPv4 routing table of the calling thread's network namespace.
const procRoute = "/proc/net/route"

// Flags of a route in procRoute.
const (
	rtfUp      = 0x1
	rtfGateway = 0x2
)

// defaultGateway returns the gateway of the first default route in a file laid out like
// /proc/net/route: a header line, then Iface, Destination, Gateway, Flags, ..., Mask with
// addresses as hexadecimal numbers in the host's byte order.
func defaultGateway(path string) (netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("read the routing table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(fields[1], 16, 32)
		gw, err2 := strconv.ParseUint(fields[2], 16, 32)
		flags, err3 := strconv.ParseUint(fields[3], 16, 32)
		mask, err4 := strconv.ParseUint(fields[7], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		if dst != 0 || mask != 0 || flags&(rtfUp|rtfGateway) != rtfUp|rtfGateway || gw == 0 {
			continue
		}
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(gw))
		return netip.AddrFrom4(a), nil
	}
	if err := sc.Err(); err != nil {
		return netip.Addr{}, fmt.Errorf("read the routing table: %w", err)
	}
	return netip.Addr{}, ErrNoGateway
}
