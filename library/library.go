package library

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"torrentfs/metainfo"
	"torrentfs/swarm"
)

// Engine does the engine's part of adding a torrent; cmd implements it.
type Engine interface {
	// FetchMetadata gets a magnet link's info dictionary from peers (BEP 9).
	FetchMetadata(ctx context.Context, m *metainfo.Magnet) (*metainfo.MetaInfo, error)
	// Start opens mi's cache, checks what it holds (reporting progress) and joins its
	// swarm. m is the magnet link it came from, if any (its peers are worth dialling).
	Start(ctx context.Context, mi *metainfo.MetaInfo, m *metainfo.Magnet, progress func(done, total int)) (*Started, error)
}

// Started is a running torrent and what to release after it stops.
type Started struct {
	T *swarm.Torrent
	// Dir is the torrent's cache directory, removed by Remove with deleteData.
	Dir string
	// Close releases the storage, after T is closed.
	Close func()
}

// View shows the library's torrents (the mount, the HTTP server). Calls for one entry
// come in the order Added, Ready (unless the torrent failed or was removed first),
// Removed; calls for different entries may be concurrent.
type View interface {
	Added(e *Entry)
	Ready(e *Entry)
	Removed(e *Entry)
}

// State is where an entry is in its life.
type State int

const (
	Fetching State = iota // waiting for a magnet's metadata
	Checking              // verifying the cache
	Running               // joined the swarm
	Failed                // see Entry.Err
)

func (s State) String() string {
	return [...]string{"fetching metadata", "checking", "running", "failed"}[s]
}

// Entry is one torrent of the library. Hash, Origin and Magnet never change.
type Entry struct {
	// Hash names the torrent's swarm: its v1 info-hash, or a v2-only torrent's v2 one
	// truncated to 20 bytes (metainfo.MetaInfo.SwarmHash).
	Hash   metainfo.Hash
	Origin string           // how it was added: a file name, "magnet", "watch:<file>"
	Magnet *metainfo.Magnet // nil when added from a .torrent

	shown string // the info-hash users see: v1 in hex, or a v2-only torrent's whole v2 one

	lib     *Library
	cancel  context.CancelFunc
	done    chan struct{} // closed when the start goroutine ends
	checked atomic.Int64  // pieces checked so far, while Checking

	// Under lib.mu:
	name    string // unique in the library; a magnet's changes once, to the torrent's name
	state   State
	err     error
	mi      *metainfo.MetaInfo
	started *Started
	removed bool
}

// Name is the entry's name, unique in the library: the torrent's name (a magnet's display
// name or info-hash until its metadata is in), with " (2)", ... when taken.
func (e *Entry) Name() string {
	e.lib.mu.Lock()
	defer e.lib.mu.Unlock()
	return e.name
}

// Torrent is the running engine torrent, nil before Ready.
func (e *Entry) Torrent() *swarm.Torrent {
	e.lib.mu.Lock()
	defer e.lib.mu.Unlock()
	if e.started == nil {
		return nil
	}
	return e.started.T
}

// MetaInfo is the torrent's metainfo, nil while a magnet's is being fetched.
func (e *Entry) MetaInfo() *metainfo.MetaInfo {
	e.lib.mu.Lock()
	defer e.lib.mu.Unlock()
	return e.mi
}

// Library is a set of torrents on one engine.
type Library struct {
	eng  Engine
	view View
	log  *logrus.Entry

	mu      sync.Mutex
	entries map[metainfo.Hash]*Entry
	order   []*Entry // in the order added
	closed  bool
}

// New makes an empty library.
func New(eng Engine, view View, log *logrus.Entry) *Library {
	return &Library{eng: eng, view: view, log: log, entries: map[metainfo.Hash]*Entry{}}
}

// Spec is a torrent to add: a .torrent file's bytes, or a magnet link.
type Spec struct {
	Torrent []byte
	Magnet  string
	// Origin says where it came from, for listings and logs (a file name).
	Origin string
}

// Errors wrapped by Add, Find and Remove, for callers that answer differently to each
// (the HTTP server's 409, 404 and 400).
var (
	ErrExists    = errors.New("already in the library")   // Add: the torrent is there
	ErrNotFound  = errors.New("no torrent")               // Find: no entry has the key
	ErrAmbiguous = errors.New("matches several torrents") // Find: a prefix several entries share
)

// Add parses spec and adds its torrent: views see its directory at once; the metadata
// (for a magnet), the cache check and the start follow in the background. An invalid
// torrent or link, or one already added, is an error and changes nothing.
func (l *Library) Add(spec Spec) (*Entry, error) {
	e := &Entry{lib: l, Origin: spec.Origin, done: make(chan struct{})}
	var name string
	switch {
	case spec.Torrent != nil:
		mi, err := metainfo.Parse(spec.Torrent)
		if err != nil {
			return nil, err
		}
		if err := Transferable(mi); err != nil {
			return nil, err
		}
		e.Hash, e.mi, e.state, name = mi.SwarmHash(), mi, Checking, mi.Info.Name
		e.shown = shownHash(mi.InfoHash, mi.InfoHashV2)
	case spec.Magnet != "":
		m, err := metainfo.ParseMagnet(spec.Magnet)
		if err != nil {
			return nil, err
		}
		e.Hash, e.Magnet, e.state, name = m.SwarmHash(), m, Fetching, m.DisplayName
		e.shown = shownHash(m.InfoHash, m.InfoHashV2)
		if e.Origin == "" {
			e.Origin = "magnet"
		}
	default:
		return nil, errors.New("nothing to add: neither a torrent nor a magnet link")
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		cancel()
		return nil, errors.New("the library is shutting down")
	}
	if old, ok := l.entries[e.Hash]; ok {
		l.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("%s: %w as %q", e.Hash, ErrExists, old.name)
	}
	e.name = l.uniqueName(name, e)
	l.entries[e.Hash] = e
	l.order = append(l.order, e)
	l.mu.Unlock()
	l.view.Added(e)
	l.log.Infof("added %s (%s) from %s", e.name, e.shown, e.Origin)
	go l.start(ctx, e)
	return e, nil
}

// Transferable refuses a torrent whose pieces cannot all be verified: a v2-only torrent
// (BEP 52) without the piece layers of its files longer than a piece. A .torrent file
// carries them (metainfo.Parse checks that) and a magnet link's fetch asks peers for them,
// so this guards the engine against a torrent put together some other way.
func Transferable(mi *metainfo.MetaInfo) error {
	if err := mi.CheckVerifiable(); err != nil {
		return fmt.Errorf("cannot verify the data: %w", err)
	}
	return nil
}

// shownHash is the info-hash users see for a torrent with v1 hash v1 and v2 hash v2 (zero
// when absent): v1 in hex, or the whole v2 one when there is no v1 one.
func shownHash(v1 metainfo.Hash, v2 metainfo.Hash256) string {
	if v1 == (metainfo.Hash{}) {
		return v2.HexString()
	}
	return v1.HexString()
}

// uniqueName is e's name: name (the info-hash when name is no valid file name), or
// "name (2)", ... when another entry has it. Under l.mu.
func (l *Library) uniqueName(name string, e *Entry) string {
	if name == "" || metainfo.CheckName(name) != nil {
		name = e.Hash.HexString()
	}
	if len(name) > metainfo.MaxComponentLength-8 {
		name = name[:metainfo.MaxComponentLength-8]
	}
	taken := map[string]bool{}
	for _, o := range l.order {
		if o != e {
			taken[o.name] = true
		}
	}
	for k, base := 2, name; ; k++ {
		if !taken[name] {
			return name
		}
		name = base + " (" + strconv.Itoa(k) + ")"
	}
}

// start brings e from Add to Running or Failed.
func (l *Library) start(ctx context.Context, e *Entry) {
	defer close(e.done)
	log := l.log.WithField("torrent", e.Name())
	l.mu.Lock()
	mi := e.mi
	l.mu.Unlock()
	if mi == nil {
		var err error
		if mi, err = l.eng.FetchMetadata(ctx, e.Magnet); err != nil {
			l.fail(ctx, e, fmt.Errorf("fetch metadata: %w", err), log)
			return
		}
		log.Infof("metadata of %s received: %d files, %.1f MiB", e.shown, len(mi.Info.Files), float64(mi.Info.TotalLength)/(1<<20))
		l.mu.Lock()
		e.mi, e.state = mi, Checking
		if !e.removed {
			e.name = l.uniqueName(mi.Info.Name, e) // the torrent's own name, not the link's
		}
		l.mu.Unlock()
	}
	st, err := l.eng.Start(ctx, mi, e.Magnet, func(done, total int) { e.checked.Store(int64(done)) })
	if err != nil {
		l.fail(ctx, e, err, log)
		return
	}
	l.mu.Lock()
	if e.removed {
		l.mu.Unlock()
		st.T.Close()
		st.Close()
		return
	}
	e.started, e.state = st, Running
	l.mu.Unlock()
	l.view.Ready(e)
}

func (l *Library) fail(ctx context.Context, e *Entry, err error, log *logrus.Entry) {
	if ctx.Err() != nil {
		return // removed or shutting down: not a failure
	}
	log.WithError(err).Error("cannot start the torrent")
	l.mu.Lock()
	e.state, e.err = Failed, err
	l.mu.Unlock()
}

// Find is the entry named key: its name, or its info-hash in hex (all of it, or a prefix of
// at least 8 digits that only one entry has; a v2-only torrent's is its v2 info-hash).
func (l *Library) Find(key string) (*Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.findLocked(key)
}

func (l *Library) findLocked(key string) (*Entry, error) {
	for _, e := range l.order {
		if e.name == key {
			return e, nil
		}
	}
	lk := strings.ToLower(key)
	var found *Entry
	if len(lk) >= 8 && isHex(lk) {
		for _, e := range l.order {
			if strings.HasPrefix(e.shown, lk) {
				if found != nil {
					return nil, fmt.Errorf("%q %w: give more of the info-hash", key, ErrAmbiguous)
				}
				found = e
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w named %q in the library", ErrNotFound, key)
	}
	return found, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Remove stops the torrent named key (see Find): its views drop it first (open files fail
// their next read), then its engine torrent and storage close; with deleteData its cache
// directory is deleted too.
func (l *Library) Remove(key string, deleteData bool) (*Entry, error) {
	l.mu.Lock()
	e, err := l.findLocked(key)
	if err != nil {
		l.mu.Unlock()
		return nil, err
	}
	l.unlinkLocked(e)
	l.mu.Unlock()
	l.stop(e, deleteData)
	l.log.Infof("removed %s (%s)", e.Name(), e.shown)
	return e, nil
}

// unlinkLocked takes e out of the maps and marks it removed. Under l.mu.
func (l *Library) unlinkLocked(e *Entry) {
	delete(l.entries, e.Hash)
	for i, o := range l.order {
		if o == e {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
	e.removed = true
}

// stop ends e after it was unlinked.
func (l *Library) stop(e *Entry, deleteData bool) {
	e.cancel()
	<-e.done
	l.view.Removed(e)
	l.mu.Lock()
	st := e.started
	l.mu.Unlock()
	if st == nil {
		return
	}
	st.T.Close()
	st.Close()
	if deleteData && st.Dir != "" {
		if err := os.RemoveAll(st.Dir); err != nil {
			l.log.WithError(err).Warnf("delete the cache of %s", e.Name())
		}
	}
}

// Close stops every torrent (keeping their caches) and refuses further adds.
func (l *Library) Close() {
	l.mu.Lock()
	l.closed = true
	all := append([]*Entry(nil), l.order...)
	for _, e := range all {
		l.unlinkLocked(e)
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.stop(e, false)
		}()
	}
	wg.Wait()
}

// Status is an entry's state for listings (ls, the control socket).
type Status struct {
	Name string `json:"name"`
	// InfoHash is the v1 info-hash in hex, or for a v2-only torrent the v2 one (64 digits).
	InfoHash string  `json:"infohash"`
	Origin   string  `json:"origin"`
	State    string  `json:"state"`
	Error    string  `json:"error,omitempty"`
	Size     int64   `json:"size"`     // bytes; 0 until the metadata is known
	Done     int64   `json:"done"`     // verified bytes
	Progress float64 `json:"progress"` // Done/Size in [0,1]
	Peers    int     `json:"peers"`
	Seeds    int     `json:"seeds"`
	WebSeeds int     `json:"web_seeds"` // BEP 19 web seeds in use (not resting after a failure)
	DownRate float64 `json:"down_rate"` // bytes per second
	UpRate   float64 `json:"up_rate"`
	Uploaded int64   `json:"uploaded"`
}

// List is every entry's status, in the order added.
func (l *Library) List() []Status {
	l.mu.Lock()
	all := append([]*Entry(nil), l.order...)
	l.mu.Unlock()
	out := make([]Status, 0, len(all))
	for _, e := range all {
		out = append(out, e.Status())
	}
	return out
}

// Entries is every entry, in the order added.
func (l *Library) Entries() []*Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Entry(nil), l.order...)
}

// Status is e's state now.
func (e *Entry) Status() Status {
	l := e.lib
	l.mu.Lock()
	s := Status{Name: e.name, InfoHash: e.shown, Origin: e.Origin, State: e.state.String()}
	if e.err != nil {
		s.Error = e.err.Error()
	}
	mi, st, state := e.mi, e.started, e.state
	l.mu.Unlock()
	if mi != nil {
		s.Size = mi.Info.TotalLength
	}
	switch {
	case st != nil:
		ts := st.T.Stats()
		s.Done, s.Peers, s.Seeds, s.WebSeeds = ts.BytesDone, ts.Peers, ts.Seeds, ts.WebSeeds
		s.DownRate, s.UpRate, s.Uploaded = ts.DownRate, ts.UpRate, ts.Uploaded
		if ts.Err != nil {
			s.Error = ts.Err.Error()
		}
	case state == Checking && mi != nil:
		s.State = fmt.Sprintf("checking %d/%d", e.checked.Load(), mi.Info.NumPieces())
	}
	if s.Size > 0 {
		s.Progress = float64(s.Done) / float64(s.Size)
	}
	return s
}

// SortByName orders statuses by name, for display.
func SortByName(s []Status) {
	sort.Slice(s, func(a, b int) bool { return s[a].Name < s[b].Name })
}
