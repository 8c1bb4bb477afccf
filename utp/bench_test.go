package utp

import (
	"io"
	"testing"
)

// BenchmarkOneWay measures one connection's throughput on loopback.
func BenchmarkOneWay(b *testing.B) {
	a, s := newSocketPair(b, nil)
	accepted := make(chan *Conn, 1)
	go func() { c, _ := s.Accept(); accepted <- c.(*Conn) }()
	c, err := a.DialContext(b.Context(), addrOf(s))
	if err != nil {
		b.Fatal(err)
	}
	cb := <-accepted
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	done := make(chan struct{})
	go func() {
		io.CopyN(io.Discard, cb, int64(len(buf)*b.N))
		close(done)
	}()
	for i := 0; i < b.N; i++ {
		c.Write(buf)
	}
	<-done
	cc := c.(*Conn)
	a.mu.Lock()
	b.Logf("window %.0f rtt %v rto %v timeouts-now %d", cc.maxWindow, cc.rtt, cc.rto, cc.timeouts)
	a.mu.Unlock()
}
