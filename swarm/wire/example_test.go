package wire_test

import (
	"bytes"
	"fmt"
	"io"

	"torrentfs/swarm/wire"
)

// The accepting side of a connection: read the header, pick the torrent by info-hash, answer,
// then read the peer id and the messages.
func Example() {
	var conn bytes.Buffer // stands in for a net.Conn
	dialer := wire.Handshake{InfoHash: [20]byte{0xaa}, PeerID: [20]byte{'-', 'T', 'R', '4', '0', '6', '0', '-'}}
	dialer.Reserved.SetFast(true)
	_ = wire.WriteHandshake(&conn, dialer)
	frames := (&wire.Message{ID: wire.HaveAll}).AppendTo(nil)
	frames = (&wire.Message{ID: wire.Piece, Index: 3, Begin: 0, Block: []byte("data")}).AppendTo(frames)
	conn.Write(frames)

	reserved, infoHash, err := wire.ReadHandshakeHeader(&conn)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("info-hash %x..., fast: %v\n", infoHash[:2], reserved.Fast())
	// ... look the torrent up, WriteHandshake our answer ...
	peerID, _ := wire.ReadPeerID(&conn)
	fmt.Println("peer:", wire.ClientName(peerID))

	rd := wire.NewReader(&conn, wire.MaxLenFor(1313))
	for {
		m, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		// m.Block is only valid until the next Read: store or copy it now.
		fmt.Println(m)
	}
	// Output:
	// info-hash aa00..., fast: true
	// peer: Transmission 4.0.6
	// have-all
	// piece 3/0+4
}
