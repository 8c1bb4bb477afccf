// Package cache stores a torrent's pieces on disk in the layout every client uses
// (DIR/<name> for a single file, DIR/<name>/<path...> for several) and keeps the record of
// which of them are there.
//
// Two types, two owners:
//   - Storage is passive I/O: it writes blocks, reads bytes back, hashes a piece against
//     what the torrent commits to (its SHA-1, or for a v2-only torrent the BEP 52 merkle
//     root of its blocks against the file's piece layer: metainfo.PieceCheck), punches a piece's bytes out of the files, measures disk use, finds what is
//     already on disk at start (Check) and reads and writes the resume file. It decides
//     nothing and keeps no have set: its callers read only what they know is verified. It is
//     safe for concurrent use by the swarm's disk workers, uploads and the mount's reads;
//     fileCache.mu guards the bounded set of open file handles (each reference counted so
//     one can leave the set while another goroutine still reads it), and saveMu orders
//     resume-file writers.
//   - Ledger is the one record of which pieces are present, in flight, pinned, and which
//     to evict under a byte bound (least recently read first). It is pure bookkeeping, not
//     safe for concurrent use: its one owner is the torrent's run loop, which executes the
//     evictions it returns through Storage.Punch.
package cache
