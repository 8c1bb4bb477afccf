package dht

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"torrentfs/internal/atomicfile"
)

const (
	stateVersion   = 1
	maxStateNodes  = 1000 // per family, read from a state file
	maxStateLength = 1 << 20
)

var errNoState = errors.New("dht: no state file")

// stateFile is the on-disk form: our ID and the nodes of the table, compact.
type stateFile struct {
	Version int    `bencode:"version"`
	ID      string `bencode:"id"`
	Nodes   string `bencode:"nodes,omitempty"`
	Nodes6  string `bencode:"nodes6,omitempty"`
	// IP is our external address as other nodes saw it (BEP 42), 4 or 16 bytes.
	IP string `bencode:"ip,omitempty"`
}

type savedState struct {
	id    nodeID
	hasID bool
	ip    netip.Addr // our external IP when the last run learned it
	nodes []nodeInfo
}

func loadState(path string) (savedState, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return savedState{}, errNoState
	}
	if err != nil {
		return savedState{}, fmt.Errorf("dht: read state: %w", err)
	}
	defer f.Close()
	b := make([]byte, maxStateLength+1)
	nr, _ := f.ReadAt(b, 0)
	if nr > maxStateLength {
		return savedState{}, fmt.Errorf("dht: read state %s: too big", path)
	}
	var sf stateFile
	if err := bencode.Unmarshal(b[:nr], &sf); err != nil {
		return savedState{}, fmt.Errorf("dht: read state %s: %w", path, err)
	}
	if sf.Version != stateVersion || len(sf.ID) != 20 {
		return savedState{}, fmt.Errorf("dht: read state %s: version %d, id of %d bytes", path, sf.Version, len(sf.ID))
	}
	st := savedState{id: nodeID([]byte(sf.ID)), hasID: true}
	if ip, ok := netip.AddrFromSlice([]byte(sf.IP)); ok && isPublic(ip) {
		st.ip = ip.Unmap()
	}
	for _, fam := range []struct {
		s  string
		v6 bool
	}{{sf.Nodes, false}, {sf.Nodes6, true}} {
		nodes, err := parseNodes(fam.s, fam.v6, maxStateNodes)
		if err != nil {
			return savedState{}, fmt.Errorf("dht: read state %s: %w", path, err)
		}
		for _, n := range nodes {
			if usableNodeAddr(n.addr) {
				st.nodes = append(st.nodes, n)
			}
		}
	}
	return st, nil
}

// saveState writes the state file atomically: a temporary file in the same directory,
// synced, renamed over the old one.
func (l *loop) saveState(now time.Time) error {
	path := l.n.cfg.StateFile
	if path == "" {
		return nil
	}
	sf := stateFile{Version: stateVersion, ID: string(l.n.id[:])}
	if ip := l.externalIP(); ip.IsValid() {
		sf.IP = string(ip.AsSlice())
	} else if ip := l.n.external; ip.IsValid() {
		sf.IP = string(ip.AsSlice()) // known at start and not contradicted since
	}
	if l.t4 != nil {
		sf.Nodes = string(appendNodes(nil, l.t4.nodes(now), false))
	}
	if l.t6 != nil {
		sf.Nodes6 = string(appendNodes(nil, l.t6.nodes(now), true))
	}
	b, err := bencode.Marshal(sf)
	if err != nil {
		return fmt.Errorf("dht: save state: %w", err)
	}
	if err := atomicfile.Write(path, b); err != nil {
		return fmt.Errorf("dht: save state %s: %w", path, err)
	}
	return nil
}
