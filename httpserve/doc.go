// Package httpserve serves torrents over HTTP: their files as streams with byte ranges
// (/stream/<infohash>/<path>), M3U playlists of the playable ones, a live status page with
// per-file piece maps (/ and /api/torrents) and Prometheus metrics (/metrics).
//
// Every stream request gets its own read head (package reader), so an HTTP viewer's reads
// are wanted exactly as a FUSE reader's are; the head is closed when the request ends,
// which includes the client going away (net/http cancels the request's context). The
// server owns only the set of torrents it serves (changed by Add and Remove, guarded by
// its own RWMutex) and its viewers' bookkeeping: which heads are open and the histograms
// of their reads. Torrents are reached through the Torrent interface declared here; cmd
// adapts the engine's torrent to it, so this package never imports the swarm.
//
// Nothing here writes: every endpoint is GET or HEAD.
package httpserve
