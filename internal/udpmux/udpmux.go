// Package udpmux shares one UDP socket between the DHT and uTP: one goroutine reads it and
// hands each datagram to a view by its first byte. KRPC messages are bencoded dictionaries,
// which start with 'd'; a uTP header starts with its type and version nibbles (0x01 to
// 0x41), never 'd'. Each view is a net.PacketConn with its own bounded queue: a flood of
// one kind drops its own packets, not the other's. Writes go straight to the socket.
//
// Callers: cmd makes a Mux on the UDP port of the TCP listen port's number and gives the
// KRPC view to the DHT node and the uTP view to a utp.Socket.
package udpmux

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Queue lengths, in datagrams: uTP carries bulk data in bursts, the DHT small messages.
const (
	utpQueue  = 4096
	krpcQueue = 512
)

type datagram struct {
	b    []byte
	from net.Addr
}

// Mux owns the socket it reads; Close closes it.
type Mux struct {
	pc        net.PacketConn
	krpc, utp *View
	closing   chan struct{}
	once      sync.Once
	wg        sync.WaitGroup
}

// New starts reading pc.
func New(pc net.PacketConn) *Mux {
	m := &Mux{pc: pc, closing: make(chan struct{})}
	m.krpc = newView(m, krpcQueue)
	m.utp = newView(m, utpQueue)
	m.wg.Add(1)
	go m.read()
	return m
}

// KRPC is the view of the DHT's messages.
func (m *Mux) KRPC() *View { return m.krpc }

// UTP is the view of everything else.
func (m *Mux) UTP() *View { return m.utp }

// Close closes the socket and both views, and waits for the reader.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.closing)
		err = m.pc.Close()
		m.wg.Wait()
	})
	return err
}

func (m *Mux) read() {
	defer m.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := m.pc.ReadFrom(buf)
		if err != nil {
			select {
			case <-m.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP errors surfacing on the socket and the like: go on, without spinning.
			select {
			case <-m.closing:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if n == 0 {
			continue
		}
		v := m.utp
		if buf[0] == 'd' {
			v = m.krpc
		}
		select {
		case v.q <- datagram{append([]byte(nil), buf[:n]...), from}:
		default: // full: dropped, as the kernel would
		}
	}
}

// View is one kind of the socket's traffic as a net.PacketConn.
type View struct {
	m      *Mux
	q      chan datagram
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{} // closed and replaced when the deadline changes
}

var _ net.PacketConn = (*View)(nil)

func newView(m *Mux, n int) *View {
	return &View{m: m, q: make(chan datagram, n), closed: make(chan struct{}), changed: make(chan struct{})}
}

// ReadFrom returns the next datagram of this view.
func (v *View) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		v.mu.Lock()
		dl, changed := v.deadline, v.changed
		v.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, timeoutError{}
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case d := <-v.q:
			return copy(b, d.b), d.from, nil
		case <-v.closed:
			return 0, nil, net.ErrClosed
		case <-v.m.closing:
			return 0, nil, net.ErrClosed
		case <-timeout:
			return 0, nil, timeoutError{}
		case <-changed:
		}
	}
}

// WriteTo sends on the shared socket.
func (v *View) WriteTo(b []byte, to net.Addr) (int, error) {
	select {
	case <-v.closed:
		return 0, net.ErrClosed
	default:
	}
	return v.m.pc.WriteTo(b, to)
}

// Close closes the view only; the socket stays open for the other.
func (v *View) Close() error {
	v.once.Do(func() { close(v.closed) })
	return nil
}

func (v *View) LocalAddr() net.Addr { return v.m.pc.LocalAddr() }

func (v *View) SetDeadline(t time.Time) error { return v.SetReadDeadline(t) }

func (v *View) SetReadDeadline(t time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.deadline = t
	close(v.changed)
	v.changed = make(chan struct{})
	return nil
}

// SetWriteDeadline is not supported per view: UDP writes do not wait.
func (v *View) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer sets the shared socket's kernel buffer, when it has one.
func (v *View) SetReadBuffer(n int) error {
	if b, ok := v.m.pc.(interface{ SetReadBuffer(int) error }); ok {
		return b.SetReadBuffer(n)
	}
	return nil
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
