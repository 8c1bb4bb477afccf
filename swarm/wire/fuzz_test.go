package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

const fuzzMaxLen = 1 << 16

func FuzzReader(f *testing.F) {
	var all []byte
	for _, m := range allMessages {
		all = m.AppendTo(all)
		f.Add(m.AppendTo(nil))
	}
	f.Add(all)
	for frame := range wantFrames {
		f.Add([]byte(frame))
	}
	f.Add([]byte("\x00\x00\x00\x02\x04\x00"))
	f.Add([]byte("\x00\x01\x00\x01\x05"))
	f.Add([]byte("\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := NewReader(&oneByteEvery{b: data}, fuzzMaxLen)
		off := 0
		for {
			m, err := rd.Read()
			if err != nil {
				if err == io.EOF && off != len(data) {
					t.Fatalf("io.EOF at offset %d of %d", off, len(data))
				}
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				break
			}
			_ = m.String()
			n := m.FrameLen()
			if off+n > len(data) {
				t.Fatalf("%v: frame of %d bytes at %d overruns %d bytes of input", m, n, off, len(data))
			}
			if enc := m.AppendTo(nil); !bytes.Equal(enc, data[off:off+n]) {
				t.Fatalf("%v re-encodes as %q, read from %q", m, enc, data[off:off+n])
			}
			off += n
			if len(rd.buf) > 2*(fuzzMaxLen+4) {
				t.Fatalf("buffer grew to %d bytes with a limit of %d", len(rd.buf), fuzzMaxLen)
			}
		}
	})
}

// oneByteEvery returns short reads of varying size so the fuzzer also drives the refill paths.
type oneByteEvery struct {
	b []byte
	n int
}

func (r *oneByteEvery) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.n++
	k := min(len(p), len(r.b), 1+r.n%7*100)
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}

func FuzzHandshake(f *testing.F) {
	h := Handshake{InfoHash: [20]byte{0xaa}, PeerID: NewPeerID(PeerIDPrefix)}
	h.Reserved.SetExtended(true)
	f.Add(h.AppendTo(nil))
	f.Add(h.AppendTo(nil)[:40])
	f.Add([]byte("\x13BitTorrent protocol"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		res, ih, err := ReadHandshakeHeader(r)
		if err != nil {
			return
		}
		id, err := ReadPeerID(r)
		if err != nil {
			return
		}
		got := Handshake{res, ih, id}
		if enc := got.AppendTo(nil); !bytes.Equal(enc, data[:HandshakeLen]) {
			t.Fatalf("%+v re-encodes as %q, read from %q", got, enc, data[:HandshakeLen])
		}
	})
}

func FuzzExtHandshake(f *testing.F) {
	for _, s := range []string{
		"de", "d1:md11:ut_metadatai3e6:ut_pexi1ee1:pi6881e1:v13:Transmission 4e",
		"d1:md1:ai300e1:bi3ee13:metadata_sizei99999999999999999999ee",
		"d6:yourip4:\x7f\x00\x00\x014:ipv616:0123456789abcdef4:reqqi500ee",
		"li1ee", "d1:mli1eee",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseExtHandshake(data)
		if err != nil {
			return
		}
		enc, err := h.Encode()
		if err != nil {
			t.Fatalf("parsed %+v from %q but cannot encode it: %v", h, data, err)
		}
		again, err := ParseExtHandshake(enc)
		if err != nil {
			t.Fatalf("cannot parse our own %q: %v", enc, err)
		}
		if !reflect.DeepEqual(h, again) {
			t.Fatalf("%q -> %+v -> %q -> %+v", data, h, enc, again)
		}
	})
}

func FuzzHashes(f *testing.F) {
	h := HashRequestFields{PiecesRoot: [HashLen]byte{1}, Index: 256, Length: 256, ProofLayers: 9}
	f.Add(HashesMessage(h, make([][HashLen]byte, 256+2)).Payload)
	f.Add(HashesMessage(HashRequestFields{Length: 3, ProofLayers: 2}, make([][HashLen]byte, 4)).Payload)
	f.Add(h.Message(HashRequest).Payload)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParseHashRequest(data); err == nil {
			if !bytes.Equal(r.Message(HashReject).Payload, data) {
				t.Fatalf("%v re-encodes differently", r)
			}
		}
		h, hashes, err := ParseHashes(data)
		if err != nil {
			if hashes != nil {
				t.Fatal("hashes returned with an error")
			}
			return
		}
		if len(hashes) > MaxHashLength+MaxProofLayers+1 || len(hashes) != int(h.Length)+h.NumProofHashes() {
			t.Fatalf("%v: %d hashes", h, len(hashes))
		}
		if enc := HashesMessage(h, hashes).Payload; !bytes.Equal(enc, data) {
			t.Fatalf("%v re-encodes differently", h)
		}
	})
}
