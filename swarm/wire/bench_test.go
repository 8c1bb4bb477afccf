package wire

import (
	"bytes"
	"io"
	"net"
	"testing"
)

const benchBlock = 16 << 10

// loopReader replays a byte stream forever.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

func pieceStream(n int) []byte {
	block := bytes.Repeat([]byte{0x5a}, benchBlock)
	var b []byte
	for i := range n {
		b = (&Message{ID: Piece, Index: uint32(i), Begin: 0, Block: block}).AppendTo(b)
	}
	return b
}

func BenchmarkReadPiece(b *testing.B) {
	rd := NewReader(&loopReader{b: pieceStream(64)}, 0)
	b.SetBytes(benchBlock)
	b.ReportAllocs()
	for b.Loop() {
		m, err := rd.Read()
		if err != nil || m.ID != Piece || len(m.Block) != benchBlock {
			b.Fatalf("%v %v", m, err)
		}
	}
}

func BenchmarkAppendPiece(b *testing.B) {
	m := Message{ID: Piece, Index: 1, Begin: 16384, Block: bytes.Repeat([]byte{0x5a}, benchBlock)}
	buf := make([]byte, 0, m.FrameLen())
	b.SetBytes(benchBlock)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendTo(buf[:0])
	}
}

// BenchmarkReadPieceLoopback reads pieces from a real TCP connection on 127.0.0.1, so the
// figure includes syscalls: the number to compare against a disk or a network.
func BenchmarkReadPieceLoopback(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	stream := pieceStream(64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, err := c.Write(stream); err != nil {
				return // the reader closed: the benchmark is over
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		c.Close()
		<-done
	}()
	rd := NewReader(c, 0)
	b.SetBytes(benchBlock)
	b.ReportAllocs()
	for b.Loop() {
		if m, err := rd.Read(); err != nil || m.ID != Piece {
			b.Fatalf("%v %v", m, err)
		}
	}
}

var _ io.Reader = (*loopReader)(nil)
