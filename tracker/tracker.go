// Package tracker holds the BitTorrent tracker protocols: the clients that announce a torrent
// over HTTP (BEP 3, BEP 23) and UDP (BEP 15) with BEP 12 tiers, and the embedded tracker
// server used for private swarms and the demo.
//
// The types in this file are shared by the clients and the server. The server's swarm state
// is owned by its mutex; each client announcer is owned by the goroutine that runs it.
package tracker

import (
	"net/netip"
	"time"
)

// Event is the announce event (BEP 3): none for a regular re-announce.
type Event int

const (
	EventNone Event = iota
	EventCompleted
	EventStarted
	EventStopped
)

// String is the event's name as the HTTP protocol spells it ("" for none).
func (e Event) String() string {
	switch e {
	case EventStarted:
		return "started"
	case EventCompleted:
		return "completed"
	case EventStopped:
		return "stopped"
	}
	return ""
}

// Peer is one peer address from an announce reply. ID is empty when the reply was compact.
type Peer struct {
	Addr netip.AddrPort
	ID   []byte
}

// AnnounceRequest is what a client tells a tracker.
type AnnounceRequest struct {
	InfoHash   [20]byte
	PeerID     [20]byte
	Port       uint16
	Uploaded   int64
	Downloaded int64
	Left       int64
	Event      Event
	NumWant    int // -1 for the tracker's default
	Key        uint32
	IP         netip.Addr // optional: the address the peer wants announced
	Compact    bool
	NoPeerID   bool
	TrackerID  string
}

// AnnounceResponse is what a tracker answers.
type AnnounceResponse struct {
	Interval    time.Duration
	MinInterval time.Duration
	TrackerID   string
	Warning     string
	Complete    int // seeders
	Incomplete  int // leechers
	Peers       []Peer
}

// ScrapeStats are a tracker's counts for one torrent.
type ScrapeStats struct {
	Complete   int // seeders
	Downloaded int // completed downloads ever
	Incomplete int // leechers
}
