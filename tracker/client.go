package tracker

// Clients: one Client talks to one tracker URL. The HTTP client is stateless apart from its
// http.Client; the UDP client keeps a socket and a connection id, owned by its mutex.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
)

// Client talks to one tracker. Its methods may be called from any goroutine; a UDP client
// serialises its requests.
type Client interface {
	Announce(ctx context.Context, req AnnounceRequest) (*AnnounceResponse, error)
	Scrape(ctx context.Context, hashes [][20]byte) (map[[20]byte]ScrapeStats, error)
	// Close releases the client's socket, if it has one.
	Close() error
}

// ErrUnsupportedScheme is returned for tracker URLs that are not http, https or udp.
var ErrUnsupportedScheme = errors.New("unsupported tracker URL scheme")

// NewClient returns a client for the tracker at rawURL, chosen by its scheme. Nothing is sent
// until the first request.
func NewClient(rawURL string) (Client, error) { return NewClientFrom(rawURL, netip.Addr{}) }

// NewClientFrom is NewClient with requests sent from the local address local (when valid):
// a client listening on one specific address of a multi-homed host must announce from it,
// or the tracker hands out a source address nobody listens on.
func NewClientFrom(rawURL string, local netip.Addr) (Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse tracker URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "http", "https":
		c := NewHTTPClient(u)
		if local.IsValid() {
			c.bind(local)
		}
		return c, nil
	case "udp":
		c, err := NewUDPClient(u)
		if c != nil {
			c.local = local
		}
		return c, err
	}
	return nil, fmt.Errorf("tracker %q: %w", rawURL, ErrUnsupportedScheme)
}

// Announce sends one announce to the tracker at announceURL. Callers that announce
// repeatedly should keep a Client (NewClient) so a UDP connection id is reused.
func Announce(ctx context.Context, announceURL string, req AnnounceRequest) (*AnnounceResponse, error) {
	c, err := NewClient(announceURL)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Announce(ctx, req)
}

// Scrape asks the tracker whose announce URL is given for its counts of the torrents in
// hashes. For HTTP the scrape URL is derived from the announce URL by convention.
func Scrape(ctx context.Context, announceURL string, hashes [][20]byte) (map[[20]byte]ScrapeStats, error) {
	c, err := NewClient(announceURL)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Scrape(ctx, hashes)
}
