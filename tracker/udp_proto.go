package tracker

// The wire facts of the UDP tracker protocol (BEP 15) that both roles speak: the client
// (client_udp.go) and the embedded tracker (server_udp.go). One set, so the two cannot
// drift apart.

const (
	// udpProtocolID is the magic a connect request carries where a connection id goes.
	udpProtocolID uint64 = 0x41727101980

	// Actions, the second field of every request and reply.
	udpActionConnect  uint32 = 0
	udpActionAnnounce uint32 = 1
	udpActionScrape   uint32 = 2
	udpActionError    uint32 = 3

	// udpHeaderLen is the start of every request: connection id, action, transaction id.
	// A connect request is only that.
	udpHeaderLen = 16
	// udpAnnounceLen is an announce request without BEP 41 options.
	udpAnnounceLen = 98
	// udpMaxScrape is how many info-hashes fit one scrape packet: BEP 15 puts the practical
	// limit at about 74 (one MTU).
	udpMaxScrape = 74
)
