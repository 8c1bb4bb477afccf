// Package utp is the Micro Transport Protocol (uTP, BEP 29): reliable, ordered byte
// streams over UDP whose congestion control (LEDBAT) yields to other traffic by keeping the
// queuing delay it causes near a target.
//
// Ownership:
//   - A Socket owns one net.PacketConn (it closes it). One goroutine reads its packets and
//     dispatches them by (remote address, connection id); another runs the timers every
//     10 ms (delayed ACKs, retransmission timeouts, SYN retries, lingering closes) while
//     the socket has connections, and sleeps while it has none.
//   - Every connection's state (windows, buffers, sequence numbers, timers) is guarded by
//     its socket's mutex, which those two goroutines and the callers of Conn methods take.
//     Packets are written to the PacketConn under that mutex: a UDP write does not wait
//     for the peer.
//   - Callers waiting in Read, Write or DialContext sleep on the connection's notify
//     channel (closed and replaced on every change) with their deadline, never on a
//     sync.Cond.
//   - Everything a peer can make us hold is bounded: connections per socket, answered SYNs
//     waiting for Accept, the receive window (data in order and out of order together),
//     how far past the next expected packet one may be kept, the send buffer and packets
//     in flight. Packets that do not fit are dropped and come again.
//
// Callers: the swarm dials and accepts peer connections through a Socket; cmd makes the
// Socket from the uTP side of the UDP port it shares with the DHT (package udpmux).
package utp
