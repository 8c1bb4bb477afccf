package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"time"

	"torrentfs/swarm/wire"
)

// A seeder that has just started is not yet a seeder of a real swarm: qBittorrent resets
// handshakes for up to about 1.5 s after it reports seeding, and drops SYNs while it gets
// going, so a client measured first paid a second that no later one did (the first
// ttfb and the first seek of each torrent in every run). warmSeeders waits, before any
// measurement, until each seeder answers a BitTorrent handshake for the torrent.
func warmSeeders(ctx context.Context, infoHash [20]byte, addrs []string) error {
	for _, a := range addrs {
		var last error
		err := poll(ctx, 30*time.Second, 100*time.Millisecond, func() bool {
			last = handshakeOnce(ctx, a, infoHash, 0)
			return last == nil
		})
		if err != nil {
			return fmt.Errorf("seeder %s never answered a handshake: %v", a, last)
		}
		// Best effort: a qBittorrent just started also unchokes its first peer only at
		// its choker's first run, half a second later (the first ttfb of every run paid
		// it); a seeder that keeps to its own unchoke clock (Transmission) is not waited
		// for past unchokeWait.
		if err := handshakeOnce(ctx, a, infoHash, unchokeWait); err != nil {
			fmt.Printf("warm-up: seeder %s: %v\n", a, err)
		}
	}
	return nil
}

// unchokeWait bounds the warm-up's wait for a seeder's first unchoke.
const unchokeWait = 2 * time.Second

// handshakeOnce dials addr and exchanges plaintext handshakes for infoHash; with unchoke
// > 0 it then says it is interested and waits that long for the seeder to unchoke it.
func handshakeOnce(ctx context.Context, addr string, infoHash [20]byte, unchoke time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second+unchoke)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	hs := wire.Handshake{InfoHash: infoHash}
	hs.Reserved.SetExtended(true)
	hs.Reserved.SetFast(true)
	copy(hs.PeerID[:], "-WARMUP-")
	rand.Read(hs.PeerID[8:])
	if err := wire.WriteHandshake(c, hs); err != nil {
		return err
	}
	_, ih, err := wire.ReadHandshakeHeader(c)
	if err != nil {
		return err
	}
	if ih != infoHash {
		return fmt.Errorf("answered for another torrent")
	}
	if _, err = wire.ReadPeerID(c); err != nil || unchoke <= 0 {
		return err
	}
	if _, err := c.Write((&wire.Message{ID: wire.Interested}).AppendTo(nil)); err != nil {
		return err
	}
	r := wire.NewReader(c, 0)
	for {
		m, err := r.Read()
		if err != nil {
			return fmt.Errorf("no unchoke: %w", err)
		}
		if !m.Keepalive && m.ID == wire.Unchoke {
			return nil
		}
	}
}
