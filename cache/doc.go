// Package cache stores a torrent's pieces on disk in the layout every client uses
// (DIR/<name> for a single file, DIR/<name>/<path...> for several), verifies them against
// their SHA-1 hashes, finds what is already there on restart, serves reads for uploads and
// the mount, and, in bounded mode, keeps disk use under a limit by evicting the least
// recently read pieces.
//
// Who owns what:
//   - Storage.mu guards all bookkeeping: the have set, the set of pieces being written, byte
//     counters, the piece LRU, pin counts and the queue of evictions to report. It is never held across pread/pwrite or
//     SHA-1 work; it is held while punching holes for evictions, so that no read or
//     admission can see a piece half-evicted.
//   - fileCache.mu guards the bounded set of open file handles; each handle is reference
//     counted so one can be dropped from the set while another goroutine still reads it.
//     Lock order: Storage.mu before fileCache.mu, never the other way.
//   - The resume file is written by one caller at a time (Storage.saveMu).
//
// A *Storage is safe for concurrent use by the swarm's disk workers and the mount's readers.
// It never calls out to its owner: evictions are queued and signalled on a channel
// (Evictions, TakeEvictions) so the owner's loop picks them up when it likes.
package cache
