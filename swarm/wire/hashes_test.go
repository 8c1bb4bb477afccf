package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testRoot() (r [HashLen]byte) {
	for i := range r {
		r[i] = byte(i + 1)
	}
	return r
}

func TestHashRequestFrame(t *testing.T) {
	h := HashRequestFields{PiecesRoot: testRoot(), BaseLayer: 0, Index: 512, Length: 256, ProofLayers: 7}
	frame := frameOf(h.Message(HashRequest))
	// BEP 52: <len=0x31><id=21><pieces root><base layer><index><length><proof layers>
	want := "\x00\x00\x00\x31\x15" + string(h.PiecesRoot[:]) +
		"\x00\x00\x00\x00" + "\x00\x00\x02\x00" + "\x00\x00\x01\x00" + "\x00\x00\x00\x07"
	if string(frame) != want {
		t.Fatalf("frame\n%q\nwant\n%q", frame, want)
	}
	m, err := NewReader(bytes.NewReader(frame), 0).Read()
	if err != nil || m.ID != HashRequest {
		t.Fatalf("read back: %v %v", m, err)
	}
	got, err := ParseHashRequest(m.Payload)
	if err != nil || got != h {
		t.Fatalf("parsed %v, %v; want %v", got, err, h)
	}
	// A reject is the same payload under id 23.
	rj := frameOf(h.Message(HashReject))
	if rj[4] != 23 || !bytes.Equal(rj[5:], frame[5:]) {
		t.Fatalf("reject frame %q", rj)
	}
}

func TestNumProofHashes(t *testing.T) {
	// What libtorrent 2.0 sends and expects: max(0, proof - (log2(next pow2 of length) - 1)).
	tests := []struct {
		length, proof uint32
		want          int
	}{
		{256, 0, 0},
		{256, 7, 0},
		{256, 8, 1},
		{256, 10, 3},
		{2, 0, 0},
		{2, 1, 1},
		{1, 0, 1},
		{3, 1, 0}, // truncated at the end of a layer: rounds up to 4
		{3, 2, 1},
		{512, 20, 12},
	}
	for _, tt := range tests {
		h := HashRequestFields{Length: tt.length, ProofLayers: tt.proof}
		if got := h.NumProofHashes(); got != tt.want {
			t.Errorf("length %d proof %d: %d uncles, want %d", tt.length, tt.proof, got, tt.want)
		}
	}
}

func TestParseHashes(t *testing.T) {
	base := HashRequestFields{PiecesRoot: testRoot(), Index: 4, Length: 4, ProofLayers: 3}
	hashes := make([][HashLen]byte, 4+2)
	for i := range hashes {
		hashes[i][0] = byte(i)
	}
	good := HashesMessage(base, hashes).Payload
	tests := []struct {
		name    string
		payload []byte
		err     string
	}{
		{"good", good, ""},
		{"short header", good[:40], "at least 48"},
		{"one hash missing", good[:len(good)-32], "want 6 hashes"},
		{"one hash extra", append(bytes.Clone(good), make([]byte, 32)...), "want 6 hashes"},
		{"no hashes", good[:48], "want 6 hashes"},
		{"zero length", withField(good, 8, 0), "length 0"},
		{"huge length", withField(good, 8, 1<<31), "length 2147483648"},
		{"length over the bound", withField(good, 8, MaxHashLength+1), "length 8193"},
		{"huge proof", withField(good, 12, 1<<30), "proof layers"},
		{"huge base", withField(good, 0, 64), "base layer 64"},
		{"index overflow", withField(good, 4, 1<<32-2), "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got, err := ParseHashes(tt.payload)
			if tt.err == "" {
				if err != nil || h != base || len(got) != 6 || got[5][0] != 5 {
					t.Fatalf("%v %v %v", h, got, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrHashMessage) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want one with %q", err, tt.err)
			}
			if got != nil {
				t.Fatalf("allocated %d hashes for a bad message", len(got))
			}
		})
	}
}

// withField returns p with the 32-bit field at off (after the pieces root) set to v.
func withField(p []byte, off int, v uint32) []byte {
	p = bytes.Clone(p)
	p[HashLen+off] = byte(v >> 24)
	p[HashLen+off+1] = byte(v >> 16)
	p[HashLen+off+2] = byte(v >> 8)
	p[HashLen+off+3] = byte(v)
	return p
}

func TestReaderHashMessageSizes(t *testing.T) {
	for _, tt := range []struct {
		id ID
		n  int
		ok bool
	}{
		{HashRequest, 48, true}, {HashRequest, 47, false}, {HashRequest, 49, false},
		{HashReject, 48, true}, {HashReject, 80, false},
		{Hashes, 48, true}, {Hashes, 80, true}, {Hashes, 47, false}, {Hashes, 81, false},
	} {
		frame := frameOf(Message{ID: tt.id, Payload: make([]byte, tt.n)})
		_, err := NewReader(bytes.NewReader(frame), 0).Read()
		if (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s with %d bytes: %v", tt.id, tt.n, err)
		}
	}
}

func TestCheckBounds(t *testing.T) {
	ok := HashRequestFields{Length: MaxHashLength, BaseLayer: MaxHashLayer, ProofLayers: MaxProofLayers, Index: 1<<32 - 1 - MaxHashLength}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	if n := ok.NumProofHashes(); n > MaxProofLayers+1 {
		t.Fatalf("%d uncles within bounds", n)
	}
}

func frameOf(m Message) []byte { return m.AppendTo(nil) }
