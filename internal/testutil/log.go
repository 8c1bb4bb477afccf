package testutil

import (
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
)

// Log returns a logger that writes through t.Log, so a package's log lines show up with the
// test that caused them: on failure, or always with -v. It logs at Info, and at Debug with
// -v. Lines logged after the test ended (a goroutine that outlived it) are dropped: t.Log
// would panic on them.
func Log(t testing.TB) *logrus.Entry {
	w := &testWriter{t: t}
	t.Cleanup(w.end)
	l := logrus.New()
	l.SetOutput(w)
	l.SetLevel(logrus.InfoLevel)
	if testing.Verbose() {
		l.SetLevel(logrus.DebugLevel)
	}
	return logrus.NewEntry(l)
}

type testWriter struct {
	t     testing.TB
	mu    sync.Mutex
	ended bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

// end runs in t.Cleanup; Log registered it before whatever it logs for was started, so it
// runs after that was stopped by its own cleanup.
func (w *testWriter) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
}
