// Package reader turns reads of one file of a torrent into piece demands: the pieces under
// a read are wanted now, a readahead window beyond them is wanted by the time the reader
// will get there, and the read then waits for its pieces and copies the verified bytes.
//
// The package owns only read-head state. Each open file handle gets one *Head; a Head's
// mutex guards its streams (positions, measured rates, window sizes) and orders its
// SetWants calls, so concurrent reads on one handle (the kernel's async readahead) see a
// consistent head. Waiting for pieces happens outside that mutex. The torrent itself is
// reached only through the Torrent interface declared here, which the swarm satisfies
// without this package importing it.
//
// # Streams, seeks and probes
//
// A Head serves reads through up to two streams, each with its own head ID at the torrent:
//
//   - main: where the reading has been sequential. Its window is sized by time (WindowTime
//     of data at the measured sequential rate, clamped to [MinWindow, MaxWindow]) and only
//     grows while reading stays sequential.
//   - side: opened by a read far from main (more than Slack away). It gets a small window
//     (MinWindow) and leaves main's wants untouched. A player that jumps to the end of an
//     MP4/MKV for its index and then comes back therefore finds main's window where it
//     was. If the side is read sequentially for PromoteBytes it was a real seek: it
//     becomes main (the old main's wants are cleared, the window starts small again). A
//     side nobody has read for SideTTL is dropped at the next read.
//
// A far read while a side exists replaces the side, unless it lands near the side.
//
// At the first read the file's first and last pieces (about PrefetchBytes each) are wanted
// under two more head IDs, due PrefetchDelay from now: soon, but after reads that block
// right now. They are asked for after the read's own pieces and before its readahead
// window: a player that reads a file's start next reads its index at the end, if it is
// there. Not at open: a rate-limited seeder reads what we ask into its send buffer at
// once, out of reach of a cancel, so a prefetch asked for a moment before a seek's first
// read would be sent ahead of it. While they are missing, reads move that due time on (at
// most every PrefetchDelay), so an overdue prefetch never sorts before a seek.
//
// # Reads
//
// A read hands its byte range to the torrent (Torrent.ReadAt), which wants the missing
// pieces now, holds every piece of the range while the bytes are copied and answers once
// they are verified: the kernel keeps readahead reads in flight while a far read replaces
// the stream that asked for them, and such a read must neither wait for a piece nobody
// wants any more nor lose it to eviction between the wait and the copy.
//
// # Interrupted reads
//
// A read whose context ends returns ctx.Err() and abandons only its own wait: the stream
// wants it set stay, so a retried read (FUSE interrupts are common, Go's preemption signal causes
// many) finds the download already under way.
package reader
