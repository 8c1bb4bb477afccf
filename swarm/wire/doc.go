// Package wire is the codec of the BitTorrent peer wire protocol: the handshake (BEP 3), the
// length-prefixed messages of BEP 3 and the Fast Extension (BEP 6), the extension handshake of
// BEP 10 with the ut_metadata (BEP 9) and ut_pex (BEP 11) messages, the allowed-fast set of BEP 6,
// BEP 52's hash request, hashes and hash reject messages and its v2 handshake bit, and peer ids.
//
// It is pure: no goroutines, no logging, no clocks, no dialing. A Reader is owned by the one
// goroutine that reads a connection (swarm's per-peer reader); nothing here has a lock. Messages
// are plain values; the swarm engine decides what they mean.
//
// The hot path is piece messages: Reader.Read decodes without allocating, returning slices that
// alias the Reader's buffer (see Reader.Read), and AppendPieceHeader lets a writer send a block
// straight from its own buffer without copying it into a frame.
package wire
