package swarm_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the engine starts (peer readers and writers, dials, disk workers, the
// announcer, the run loop) must be gone once its Client is closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
