package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReaderMalformed(t *testing.T) {
	tests := []struct {
		name   string
		maxLen int
		in     string
		want   error
		msg    string // substring of the error text
	}{
		{"length over the limit", 100, "\x00\x00\x00\x65\x07", ErrTooLong, "101 over the limit of 100"},
		{"length over the default limit", 0, "\x00\x10\x00\x01", ErrTooLong, "1048577"},
		{"length 4GiB-1", 0, "\xff\xff\xff\xff", ErrTooLong, "4294967295"},
		{"choke with a payload", 0, "\x00\x00\x00\x02\x00\x00", ErrMalformed, "choke with a 1-byte payload, want 0"},
		{"have-all with a payload", 0, "\x00\x00\x00\x02\x0e\x00", ErrMalformed, "have-all"},
		{"have with 3 bytes", 0, "\x00\x00\x00\x04\x04\x00\x00\x01", ErrMalformed, "have with a 3-byte payload, want 4"},
		{"have with 5 bytes", 0, "\x00\x00\x00\x06\x04\x00\x00\x00\x01\x02", ErrMalformed, "want 4"},
		{"request with 11 bytes", 0, "\x00\x00\x00\x0c\x06" + strings.Repeat("\x00", 11), ErrMalformed, "request with a 11-byte payload, want 12"},
		{"cancel with 13 bytes", 0, "\x00\x00\x00\x0e\x08" + strings.Repeat("\x00", 13), ErrMalformed, "cancel"},
		{"reject with 4 bytes", 0, "\x00\x00\x00\x05\x10" + strings.Repeat("\x00", 4), ErrMalformed, "reject"},
		{"suggest with 0 bytes", 0, "\x00\x00\x00\x01\x0d", ErrMalformed, "suggest"},
		{"allowed-fast with 8 bytes", 0, "\x00\x00\x00\x09\x11" + strings.Repeat("\x00", 8), ErrMalformed, "allowed-fast"},
		{"piece with 7 bytes", 0, "\x00\x00\x00\x08\x07" + strings.Repeat("\x00", 7), ErrMalformed, "piece with a 7-byte payload, want at least 8"},
		{"piece with no payload", 0, "\x00\x00\x00\x01\x07", ErrMalformed, "piece"},
		{"port with 1 byte", 0, "\x00\x00\x00\x02\x09\x1a", ErrMalformed, "port with a 1-byte payload, want 2"},
		{"port with 3 bytes", 0, "\x00\x00\x00\x04\x09\x1a\xe1\x00", ErrMalformed, "port"},
		{"extended without ext id", 0, "\x00\x00\x00\x01\x14", ErrMalformed, "extended message without an extended id"},
		{"truncated length", 0, "\x00\x00", io.ErrUnexpectedEOF, "read message length"},
		{"truncated body", 0, "\x00\x00\x00\x05\x04\x00\x00", io.ErrUnexpectedEOF, "read 5-byte message"},
		{"length with no body", 0, "\x00\x00\x00\x0d", io.ErrUnexpectedEOF, ""},
		{"truncated piece", 0, "\x00\x00\x40\x09\x07" + strings.Repeat("x", 1000), io.ErrUnexpectedEOF, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader(tt.in), tt.maxLen).Read()
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestReaderEOF(t *testing.T) {
	rd := NewReader(strings.NewReader(""), 0)
	if _, err := rd.Read(); err != io.EOF {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
	// Errors from the stream other than EOF come through wrapped.
	boom := errors.New("boom")
	rd = NewReader(io.MultiReader(strings.NewReader("\x00\x00\x00\x05\x04"), &errReader{boom}), 0)
	if _, err := rd.Read(); !errors.Is(err, boom) {
		t.Fatalf("stream error: %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func TestReaderUnknownIDSkippable(t *testing.T) {
	var in []byte
	in = (&Message{ID: 0x63, Payload: []byte("whatever a future BEP sends")}).AppendTo(in)
	in = (&Message{ID: Have, Index: 3}).AppendTo(in)
	rd := NewReader(bytes.NewReader(in), 0)
	m, err := rd.Read()
	if err != nil || m.ID.Known() || string(m.Payload) != "whatever a future BEP sends" {
		t.Fatalf("unknown message read as %#v, %v", m, err)
	}
	if m, err = rd.Read(); err != nil || m.ID != Have || m.Index != 3 {
		t.Fatalf("message after an unknown one: %#v, %v", m, err)
	}
}

func TestReaderBigMessagesThenShrink(t *testing.T) {
	// A big bitfield (limit raised with MaxLenFor), then pieces: the buffer grows for the
	// bitfield and shrinks back afterwards.
	const numPieces = 20_000_000
	bf := bytes.Repeat([]byte{0x5a}, (numPieces+7)/8)
	block := bytes.Repeat([]byte{1}, 16384)
	var in []byte
	in = (&Message{ID: Bitfield, Bitfield: bf}).AppendTo(in)
	for i := range 10 {
		in = (&Message{ID: Piece, Index: uint32(i), Block: block}).AppendTo(in)
	}
	if NewReader(bytes.NewReader(in), 0).maxLen >= len(bf)+1 {
		t.Fatal("test needs a bitfield over the default limit")
	}
	if _, err := NewReader(bytes.NewReader(in), 0).Read(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("big bitfield with the default limit: %v, want ErrTooLong", err)
	}
	rd := NewReader(bytes.NewReader(in), MaxLenFor(numPieces))
	m, err := rd.Read()
	if err != nil || !bytes.Equal(m.Bitfield, bf) {
		t.Fatalf("big bitfield: %v", err)
	}
	for i := range 10 {
		m, err := rd.Read()
		if err != nil || m.Index != uint32(i) || !bytes.Equal(m.Block, block) {
			t.Fatalf("piece %d after the bitfield: %v %v", i, m, err)
		}
		if len(rd.buf) > shrinkAbove {
			t.Fatalf("buffer still %d bytes after the bitfield was consumed", len(rd.buf))
		}
	}
}

func TestReaderNoAllocForAnnouncedLength(t *testing.T) {
	// A peer that announces a 16 MiB frame and sends 10 bytes must not cost 16 MiB.
	rd := NewReader(strings.NewReader("\x01\x00\x00\x00\x05123456789"), 32<<20)
	if _, err := rd.Read(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if len(rd.buf) > initialBuf {
		t.Fatalf("buffer grew to %d bytes for 14 bytes of input", len(rd.buf))
	}
}

func TestReaderBlockCapped(t *testing.T) {
	// Appending to a returned block must not overwrite the next frame in the buffer.
	var in []byte
	in = (&Message{ID: Piece, Block: []byte("abc")}).AppendTo(in)
	in = (&Message{ID: Have, Index: 77}).AppendTo(in)
	rd := NewReader(bytes.NewReader(in), 0)
	m, _ := rd.Read()
	_ = append(m.Block, "XXXXXXXXXXXX"...)
	if m, err := rd.Read(); err != nil || m.ID != Have || m.Index != 77 {
		t.Fatalf("next frame clobbered: %v %v", m, err)
	}
}

func TestReaderResumesAfterStreamError(t *testing.T) {
	// A read deadline firing mid-frame must not lose the bytes already read.
	frame := (&Message{ID: Request, Index: 1, Begin: 2, Length: 3}).AppendTo(nil)
	timeout := errors.New("i/o timeout")
	src := &scriptedReader{steps: []step{{data: frame[:6]}, {err: timeout}, {data: frame[6:]}}}
	rd := NewReader(src, 0)
	if _, err := rd.Read(); !errors.Is(err, timeout) {
		t.Fatalf("first read: %v, want the timeout", err)
	}
	m, err := rd.Read()
	if err != nil || m.ID != Request || m.Index != 1 || m.Begin != 2 || m.Length != 3 {
		t.Fatalf("after the timeout: %v, %v", m, err)
	}
}

func TestReaderContinuesAfterMalformed(t *testing.T) {
	in := "\x00\x00\x00\x04\x04\x00\x00\x01" + "\x00\x00\x00\x05\x04\x00\x00\x00\x09"
	rd := NewReader(strings.NewReader(in), 0)
	if _, err := rd.Read(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v, want ErrMalformed", err)
	}
	if m, err := rd.Read(); err != nil || m.ID != Have || m.Index != 9 {
		t.Fatalf("frame after a malformed one: %v, %v", m, err)
	}
}

type step struct {
	data []byte
	err  error
}

// scriptedReader returns its steps one per Read, then io.EOF.
type scriptedReader struct{ steps []step }

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	s := r.steps[0]
	n := copy(p, s.data)
	if n < len(s.data) {
		r.steps[0].data = s.data[n:]
		return n, nil
	}
	r.steps = r.steps[1:]
	return n, s.err
}
