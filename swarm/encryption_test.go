package swarm_test

import (
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/internal/testutil"
	"torrentfs/swarm"
)

// connRecorder is a logger that remembers how each peer connection of a client travels
// (the "encryption" field of "peer connected") and counts the refusals and failed dials:
// the tests' view of which method a handshake selected.
type connRecorder struct {
	mu       sync.Mutex
	methods  []string
	refused  int // incoming connections refused (by policy or a failed handshake)
	failed   int // dials that failed
	fallback int // dials that fell back to plaintext
}

func (r *connRecorder) Levels() []logrus.Level { return logrus.AllLevels }

func (r *connRecorder) Fire(e *logrus.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Message {
	case "peer connected":
		r.methods = append(r.methods, e.Data["encryption"].(interface{ String() string }).String())
	case "incoming connection refused":
		r.refused++
	case "dial failed":
		r.failed++
	case "peer dropped the encryption handshake; it gets plaintext from now on":
		r.fallback++
	}
	return nil
}

func (r *connRecorder) snapshot() (methods []string, refused, failed, fallback int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.methods...), r.refused, r.failed, r.fallback
}

// recordingLog is a debug-level logger feeding r (and the test log when -v).
func recordingLog(t *testing.T, r *connRecorder) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(testutil.Log(t).Logger.Out)
	}
	l.SetLevel(logrus.DebugLevel)
	l.AddHook(r)
	return logrus.NewEntry(l)
}

// TestEncryptionPolicies runs a seeder and a leecher that dials it, under each pair of
// policies: the download goes over the method the pair selects, or never connects.
func TestEncryptionPolicies(t *testing.T) {
	src := t.TempDir()
	files := map[string]int64{"a.bin": 300 << 10, "b.bin": 77777}
	mi, _ := makeTorrent(t, src, "enc", files, 32<<10)
	for _, tc := range []struct {
		seed, leech swarm.Encryption
		want        string // the method of the connection; "" means no connection
	}{
		{swarm.EncryptionRequire, swarm.EncryptionRequire, "rc4"},
		{swarm.EncryptionPrefer, swarm.EncryptionPrefer, "plaintext"}, // MSE, then plaintext: both allow it
		{swarm.EncryptionRequire, swarm.EncryptionPrefer, "rc4"},
		{swarm.EncryptionPrefer, swarm.EncryptionRequire, "rc4"},
		{swarm.EncryptionOff, swarm.EncryptionPrefer, "none"}, // the fallback
		{swarm.EncryptionPrefer, swarm.EncryptionOff, "none"},
		{swarm.EncryptionOff, swarm.EncryptionOff, "none"},
		{swarm.EncryptionRequire, swarm.EncryptionOff, ""},
		{swarm.EncryptionOff, swarm.EncryptionRequire, ""},
	} {
		t.Run(tc.seed.String()+"-seed/"+tc.leech.String()+"-leech", func(t *testing.T) {
			var seedRec, leechRec connRecorder
			seeder := newClient(t, swarm.ClientConfig{Encryption: tc.seed, Log: recordingLog(t, &seedRec)})
			addTorrent(t, seeder, mi, src, true, swarm.TorrentConfig{})
			leecher := newClient(t, swarm.ClientConfig{Encryption: tc.leech, Log: recordingLog(t, &leechRec)})
			seedAddr := seeder.Addr().String()
			tr := addTorrent(t, leecher, mi, t.TempDir(), false, swarm.TorrentConfig{Peers: []netip.AddrPort{netip.MustParseAddrPort(seedAddr)}})
			if tc.want == "" {
				// Wait for the refusal on the seeder's side and the failure on ours, then
				// check that no connection was ever made.
				testutil.WaitFor(t, 30*time.Second, "a refused connection and a failed dial", func() bool {
					_, refused, _, _ := seedRec.snapshot()
					_, _, failed, _ := leechRec.snapshot()
					return refused > 0 && failed > 0
				})
				if m, _, _, _ := leechRec.snapshot(); len(m) > 0 {
					t.Fatalf("leecher connected (%v) against the policies", m)
				}
				if m, _, _, _ := seedRec.snapshot(); len(m) > 0 {
					t.Fatalf("seeder connected (%v) against the policies", m)
				}
				if s := tr.Stats(); s.PiecesDone != 0 {
					t.Fatalf("%d pieces downloaded", s.PiecesDone)
				}
				return
			}
			waitComplete(t, tr, 60*time.Second)
			for who, rec := range map[string]*connRecorder{"seeder": &seedRec, "leecher": &leechRec} {
				methods, _, _, _ := rec.snapshot()
				if len(methods) == 0 {
					t.Fatalf("%s logged no connection", who)
				}
				for _, m := range methods {
					if m != tc.want {
						t.Errorf("%s: connection over %s, want %s", who, m, tc.want)
					}
				}
			}
			_, _, _, fallback := leechRec.snapshot()
			if wantFallback := tc.seed == swarm.EncryptionOff && tc.leech == swarm.EncryptionPrefer; (fallback > 0) != wantFallback {
				t.Errorf("fallbacks to plaintext: %d", fallback)
			}
		})
	}
}
