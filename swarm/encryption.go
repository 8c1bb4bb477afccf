package swarm

// Message Stream Encryption (MSE/PE) on peer connections, per the client's policy: how a
// dial starts (MSE or plaintext, and the fallback of EncryptionPrefer) and how an accepted
// connection is told apart and answered. The handshake itself is package mse.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"torrentfs/swarm/mse"
	"torrentfs/swarm/wire"
)

// Encryption is the client's policy for MSE/PE ("protocol encryption") on peer
// connections. The secret of each connection is the torrent's info-hash.
type Encryption int

const (
	// EncryptionPrefer (the default) dials with MSE offering RC4 or plaintext (the peer
	// chooses); a peer that drops the MSE handshake is dialed again at once in plaintext
	// over the same transport (dialOnce, utp.go) and, once that works, remembered as one
	// that wants plaintext. Incoming connections may be either; an incoming MSE handshake
	// that offers both gets plaintext (mse.choose: RC4 costs both sides a pass over every
	// byte, and the peer said it can do without), one that offers only RC4 gets RC4.
	EncryptionPrefer Encryption = iota
	// EncryptionRequire speaks MSE with RC4 only, both ways: plaintext handshakes and peers
	// that offer only plaintext inside MSE are refused.
	EncryptionRequire
	// EncryptionOff speaks plaintext only: incoming MSE handshakes are refused.
	EncryptionOff
)

// ParseEncryption reads "prefer", "require" or "off".
func ParseEncryption(s string) (Encryption, error) {
	switch s {
	case "prefer":
		return EncryptionPrefer, nil
	case "require":
		return EncryptionRequire, nil
	case "off":
		return EncryptionOff, nil
	}
	return 0, fmt.Errorf("encryption %q: want prefer, require or off", s)
}

func (e Encryption) String() string {
	switch e {
	case EncryptionPrefer:
		return "prefer"
	case EncryptionRequire:
		return "require"
	case EncryptionOff:
		return "off"
	}
	return fmt.Sprintf("Encryption(%d)", int(e))
}

// provide is what our dials offer inside MSE, and allow what we accept from others; 0 is
// no MSE at all.
func (e Encryption) methods() mse.Method {
	switch e {
	case EncryptionRequire:
		return mse.RC4
	case EncryptionOff:
		return 0
	}
	return mse.RC4 | mse.Plaintext
}

// maxAddrSet bounds an addrSet; past it, it starts over.
const maxAddrSet = 4096

// addrSet remembers peer addresses with a property learned by dialing them: under
// EncryptionPrefer, those that dropped our MSE handshake and then took a plaintext one
// (dialed in plaintext at once from then on); for hybrids, those that know the v2 hash and
// still drop encrypted tries naming it (dialOnce's retryV2 is not tried again).
type addrSet struct {
	mu sync.Mutex
	m  map[netip.AddrPort]struct{}
}

func (p *addrSet) has(a netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.m[a]
	return ok
}

func (p *addrSet) add(a netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxAddrSet {
		p.m = make(map[netip.AddrPort]struct{})
	}
	p.m[a] = struct{}{}
}

// errMSE marks a dial that failed inside the MSE handshake, which EncryptionPrefer answers
// with a plaintext dial.
type errMSE struct{ err error }

func (e errMSE) Error() string { return "encryption handshake: " + e.err.Error() }
func (e errMSE) Unwrap() error { return e.err }

// dial connects to a peer and performs the handshake hs, encrypted or not as the policy
// says. A hybrid torrent passes its truncated v2 hash as v2 (else zero): encrypted tries
// name it first, MSE key and handshake, because libtorrent upgrades an encrypted
// connection to v2 only when its MSE key is the v2 hash (it ignores the upgrade bit there);
// a peer that does not know that hash (a v1-only client) drops the try, and an encrypted
// one naming hs's hash follows at once. Plaintext tries name hs's hash with the upgrade bit.
func (c *Client) dial(ctx context.Context, addr netip.AddrPort, hs wire.Handshake, v2 [20]byte) (net.Conn, wire.Handshake, error) {
	provide := c.cfg.Encryption.methods()
	if c.cfg.Encryption == EncryptionPrefer && c.plain.has(addr) {
		provide = 0
	}
	conn, phs, plain, err := c.dialOnce(ctx, addr, hs, v2, provide, c.cfg.Encryption == EncryptionPrefer)
	if err == nil && plain {
		c.plain.add(addr)
		c.log.WithField("peer", addr).Debug("peer dropped the encryption handshake; it gets plaintext from now on")
	}
	return conn, phs, err
}

// sendHandshake starts a dialed connection: our BitTorrent handshake, in plaintext when
// provide is 0, else inside an MSE handshake offering provide (as its initial payload, so
// it leaves with the handshake's last message). It returns the connection to go on with.
func sendHandshake(conn net.Conn, hs wire.Handshake, provide mse.Method) (net.Conn, error) {
	if provide == 0 {
		if err := wire.WriteHandshake(conn, hs); err != nil {
			return nil, fmt.Errorf("send handshake: %w", err)
		}
		return conn, nil
	}
	var buf [wire.HandshakeLen]byte
	ec, _, err := mse.Initiate(conn, hs.InfoHash, provide, hs.AppendTo(buf[:0]))
	if err != nil {
		return nil, errMSE{err}
	}
	return ec, nil
}

// acceptEncryption looks at the first bytes of an accepted connection and, for an MSE
// handshake, answers it when the policy allows, for whichever of our torrents the peer
// names. It returns the connection the BitTorrent handshake is read from, the selected
// method (0 for a plaintext handshake) and the info-hash MSE named.
func (c *Client) acceptEncryption(conn net.Conn) (net.Conn, mse.Method, [20]byte, error) {
	var none [20]byte
	sc, plain, err := mse.Sniff(conn)
	switch {
	case err != nil:
		return nil, 0, none, fmt.Errorf("read first bytes: %w", err)
	case plain && c.cfg.Encryption == EncryptionRequire:
		return nil, 0, none, errors.New("plaintext handshake refused: encryption is required")
	case plain:
		return sc, 0, none, nil
	case c.cfg.Encryption == EncryptionOff:
		return nil, 0, none, errors.New("encryption handshake refused: encryption is off")
	}
	ec, m, skey, ia, err := mse.Accept(sc, c.torrentByReq2, c.cfg.Encryption.methods())
	if err != nil {
		return nil, 0, none, fmt.Errorf("encryption handshake: %w", err)
	}
	return mse.Prepend(ec, ia), m, skey, nil
}

// torrentByReq2 finds, among the client's torrents, the one whose info-hash hashes to
// req2 (an MSE initiator names its torrent so). Hashing each info-hash per incoming
// connection costs a microsecond a torrent.
func (c *Client) torrentByReq2(req2 [20]byte) ([20]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ih := range c.torrents {
		if mse.Req2(ih) == req2 {
			return ih, true
		}
	}
	return [20]byte{}, false
}

// connEncryption is how a connection's payload travels, for logs and stats.
func connEncryption(conn net.Conn) mse.Method {
	if ec, ok := conn.(*mse.Conn); ok {
		return ec.Method()
	}
	return 0
}
