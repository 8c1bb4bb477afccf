package testpeers

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"torrentfs/internal/testutil"
)

// Facts about Transmission 3.00 that shape these helpers, found by running it on loopback:
//   - It drops every 127/8 address a tracker or PEX hands it ("martian"), so on loopback it
//     never dials out: it only serves and downloads over connections that others open to
//     it. Whoever should trade with it must learn its address (from the tracker, after it
//     announced) and dial it.
//   - With PEX on, it does tell its peers about each other, 127/8 addresses included: a
//     first ut_pex within about a second of a connection, then about once a minute. A peer
//     that dialed it may first be named by the port it dialed from; the port of its
//     extension handshake comes in a later message.
//   - It keeps one connection per IP address: two of our clients dialing it from 127.0.0.1
//     get one connection between them. Give each dialer its own loopback address.
//   - It never creates zero-length files.
//   - Its per-peer events (blocks received, from whom) go only to its "deep" log, which it
//     writes to stdout or stderr as TR_DEBUG_FD says (1 or 2; other values are ignored).

// TransmissionOpts configures a Transmission process.
type TransmissionOpts struct {
	IP string // listen address, e.g. 127.0.0.22 (one IP per client: see INTEROP.md)
	// DeepLog, when set, is a file that gets Transmission's per-peer debug log; it grows by
	// about 1 MB per MB downloaded.
	DeepLog string
	// Port is the peer port; 0 picks a free one on IP (which must be local then).
	Port int
	// DHTBootstrap, when set, turns its DHT on, starting from these IP:PORT nodes only:
	// they go in its dht.bootstrap file and in its saved table (dht.dat), which it pings at
	// once. (From dht.bootstrap alone it takes about a minute to know the more than 8 nodes
	// it wants before it announces.) Its DHT ignores 127/8, so use netns hosts.
	DHTBootstrap []string
	// Wrap is put before the command, e.g. a netns.Host's Prefix.
	Wrap []string
	// PEX turns peer exchange on (Transmission 3.00 sends ut_pex about once a minute).
	PEX bool
	// Encryption is its MSE/PE setting: 0 prefers plaintext and accepts either, 1
	// prefers encryption, 2 requires it.
	Encryption int
	// UTP turns µTP on (its UDP socket is the peer port's).
	UTP bool
	// UploadLimit, when > 0, limits its upload to this many bytes a second (rounded up to
	// its kB). Limited, it sends in bursts every half second, each what it was asked up to
	// its quota for the half second.
	UploadLimit int64
}

// Transmission starts transmission-cli on a torrent with data in dir, listening on ip: a
// seeder when the data is complete there, a downloader otherwise. DHT, LPD, PEX (unless
// TransmissionOpts.PEX), µTP and port mapping are off. It keeps running (seeding) once
// complete; the test decides when it is done by looking at the files (TransmissionHas).
func Transmission(t testing.TB, torrent, dir, ip string) (*testutil.Proc, int) {
	t.Helper()
	return TransmissionWith(t, torrent, dir, TransmissionOpts{IP: ip})
}

// TransmissionWith is Transmission with options.
func TransmissionWith(t testing.TB, torrent, dir string, o TransmissionOpts) (*testutil.Proc, int) {
	t.Helper()
	testutil.Need(t, "transmission-cli")
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	cfg := t.TempDir()
	if o.Port == 0 {
		o.Port = FreePort(t, o.IP)
	}
	port := o.Port
	settings := transmissionSettings(o, dir)
	if len(o.DHTBootstrap) > 0 {
		settings["dht-enabled"] = true
		var lines []string
		for _, hp := range o.DHTBootstrap {
			h, p, _ := strings.Cut(hp, ":")
			lines = append(lines, h+" "+p)
		}
		if err := os.WriteFile(filepath.Join(cfg, "dht.bootstrap"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg, "dht.dat"), transmissionDHTState(t, o.DHTBootstrap), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "settings.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-g", cfg, "-w", dir, "-p", strconv.Itoa(port), torrent}
	if o.DeepLog == "" {
		argv := append(append(append([]string{}, o.Wrap...), "transmission-cli"), args...)
		return testutil.Start(t, argv[0], argv[1:]...), port
	}
	// It writes the deep log only to fd 1 or 2; its messages go to stderr and its status
	// line to stdout, so stdout becomes the deep log.
	sh := append([]string{"-c", `TR_DEBUG_FD=1 exec transmission-cli "$@" >"$0"`, o.DeepLog}, args...)
	return testutil.Start(t, "sh", sh...), port
}

// transmissionSettings is a settings.json for o, with data in dir and o.Port set.
func transmissionSettings(o TransmissionOpts, dir string) map[string]any {
	return map[string]any{
		"dht-enabled": false, "lpd-enabled": false, "pex-enabled": o.PEX, "utp-enabled": o.UTP,
		"port-forwarding-enabled": false, "blocklist-enabled": false, "rpc-enabled": false,
		"bind-address-ipv4": o.IP, "bind-address-ipv6": "::1",
		"peer-port": o.Port, "peer-port-random-on-start": false,
		"encryption":             o.Encryption,
		"speed-limit-up-enabled": o.UploadLimit > 0, "speed-limit-up": (o.UploadLimit + 999) / 1000, "speed-limit-down-enabled": false,
		"alt-speed-enabled": false, "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
		"download-dir": dir, "incomplete-dir-enabled": false, "rename-partial-files": false,
		"start-added-torrents": true, "message-level": 2,
	}
}

// TransmissionHas tells whether every non-empty file under want exists under got with the
// same bytes: Transmission never creates zero-length files.
func TransmissionHas(want, got string) bool {
	ok, n := true, 0
	filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || fi.Size() == 0 || !ok {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		ok = sameFile(p, filepath.Join(got, rel))
		n++
		return nil
	})
	return ok && n > 0
}

func sameFile(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// TransmissionBlocksFrom counts the blocks Transmission's deep log says it received from
// peers whose id starts with prefix (e.g. "-TF0001-").
func TransmissionBlocksFrom(t testing.TB, deepLog, prefix string) int {
	t.Helper()
	f, err := os.Open(deepLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Lines look like "... [127.0.0.1]:49430 [-TF0001-]: got block 34:49152->16384 (peer-msgs.c:1792)".
	tag := "[" + prefix
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if k := strings.Index(l, tag); k >= 0 && strings.Contains(l[k:], "]: got block ") {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", deepLog, err)
	}
	return n
}

// transmissionDHTState is a dht.dat for Transmission 3.00 holding nodes: a bencoded dict
// with a random id and the nodes in compact form.
func transmissionDHTState(t testing.TB, nodes []string) []byte {
	var compact []byte
	for _, n := range nodes {
		ap, err := netip.ParseAddrPort(n)
		if err != nil || !ap.Addr().Is4() {
			t.Fatalf("DHT node %q: want IPv4:PORT", n)
		}
		compact = append(compact, ap.Addr().AsSlice()...)
		compact = binary.BigEndian.AppendUint16(compact, ap.Port())
	}
	var id [20]byte
	rand.Read(id[:])
	b := fmt.Appendf(nil, "d2:id20:%s5:nodes%d:", id[:], len(compact))
	b = append(b, compact...)
	return append(b, 'e')
}
