package tracker

// Clients: one Client talks to one tracker URL. The HTTP client is stateless apart from its
// http.Client; the UDP client keeps a socket and a connection id, owned by its mutex.

import (
	"context"
	"errors"
	"fmt"
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
func NewClient(rawURL string) (Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse tracker URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "http", "https":
		return NewHTTPClient(u), nil
	case "udp":
		return NewUDPClient(u)
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
