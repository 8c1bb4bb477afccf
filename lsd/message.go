package lsd

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// maxMessage bounds what we read and what we send: BEP 14 messages are a few lines,
	// and one datagram on any LAN (Ethernet MTU 1500 less headers) holds this much.
	maxMessage = 1400
	// maxInfohashes caps the info-hashes taken from one message, and how many we put in
	// one: 20 Infohash lines (52 bytes each) and the other headers fit in maxMessage.
	maxInfohashes = 20
	maxCookie     = 64
)

// message is one BT-SEARCH announce: a peer at the sender's address and Port has these
// torrents.
type message struct {
	port       uint16
	infohashes [][20]byte
	cookie     string
}

var errMalformed = errors.New("malformed BT-SEARCH message")

// parseMessage reads a BT-SEARCH datagram. It takes what real clients send (CRLF or bare
// LF line ends, header names in any case, trailing blank lines) and refuses anything that
// has no valid Port or no valid Infohash. Info-hashes past maxInfohashes are ignored.
func parseMessage(b []byte) (message, error) {
	var m message
	if len(b) > maxMessage {
		return m, fmt.Errorf("%w: %d bytes", errMalformed, len(b))
	}
	lines := strings.Split(string(b), "\n")
	if strings.TrimSpace(lines[0]) != "BT-SEARCH * HTTP/1.1" {
		return m, fmt.Errorf("%w: request line %q", errMalformed, lines[0])
	}
	havePort := false
	for _, line := range lines[1:] {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			break // end of the headers
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return m, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "port":
			p, err := strconv.ParseUint(value, 10, 16)
			if err != nil || p == 0 || havePort && uint16(p) != m.port {
				return m, fmt.Errorf("%w: port %q", errMalformed, value)
			}
			m.port, havePort = uint16(p), true
		case "infohash":
			var ih [20]byte
			if len(value) != 40 {
				return m, fmt.Errorf("%w: infohash %q", errMalformed, value)
			}
			if _, err := hex.Decode(ih[:], []byte(value)); err != nil {
				return m, fmt.Errorf("%w: infohash %q", errMalformed, value)
			}
			if len(m.infohashes) < maxInfohashes && !hasInfohash(m.infohashes, ih) {
				m.infohashes = append(m.infohashes, ih)
			}
		case "cookie":
			if len(value) > maxCookie {
				return m, fmt.Errorf("%w: cookie of %d bytes", errMalformed, len(value))
			}
			m.cookie = value
		}
	}
	if !havePort || len(m.infohashes) == 0 {
		return m, fmt.Errorf("%w: no port or no infohash", errMalformed)
	}
	return m, nil
}

func hasInfohash(list [][20]byte, ih [20]byte) bool {
	for _, x := range list {
		if x == ih {
			return true
		}
	}
	return false
}

// formatMessage writes the announce for host (the group's "ip:port" as BEP 14 puts it in
// the Host header). len(m.infohashes) must be at most maxInfohashes.
func formatMessage(host string, m message) []byte {
	var b bytes.Buffer
	b.WriteString("BT-SEARCH * HTTP/1.1\r\n")
	fmt.Fprintf(&b, "Host: %s\r\nPort: %d\r\n", host, m.port)
	for _, ih := range m.infohashes {
		fmt.Fprintf(&b, "Infohash: %x\r\n", ih[:])
	}
	if m.cookie != "" {
		fmt.Fprintf(&b, "cookie: %s\r\n", m.cookie)
	}
	// BEP 14's example ends with two blank lines; libtorrent sends the same.
	b.WriteString("\r\n\r\n")
	return b.Bytes()
}
