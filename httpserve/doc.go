// Package httpserve serves torrents over HTTP: their files as streams with byte ranges
// (/stream/<infohash>/<path>), M3U playlists of the playable ones, a live status page with
// per-file piece maps (/ and /api/torrents) and Prometheus metrics (/metrics).
//
// Stream requests read through read heads (package reader), so an HTTP viewer's reads are
// wanted exactly as a FUSE reader's are. The requests of one viewer (client address and
// user agent) for one file share a head, as one open file's reads do: players open a new
// request for every seek. A request's reads end when it does, which includes the client
// going away (net/http cancels the request's context); the head then stays parked for
// Options.Linger, wanting what it wanted, for the viewer's next request, and closes if
// none comes (session.go). The server owns the set of torrents it serves (changed by Add
// and Remove, guarded by its own RWMutex) and, under its mutex, its viewers' bookkeeping:
// the requests in flight, the sessions and their parking, the histograms of their reads. Torrents are reached through the Torrent interface declared here; cmd
// adapts the engine's torrent to it, so this package never imports the swarm.
//
// Reading is open to anyone who reaches the server: every read endpoint is GET or HEAD.
// Writing is off unless Options has a Control and a Token (control.go): then POST
// /api/torrents adds a torrent (a .torrent file's bytes, a magnet link, or a multipart
// form's upload) and DELETE /api/torrents/{name or info-hash} removes one, for requests
// that carry the token (Authorization: Bearer) and do not come from another site's page
// (Origin). The set of torrents is then still changed only through the Control (cmd's
// library), which tells the server through Add and Remove like any other change; the
// server keeps no state of its own for writes. GET /api/server says whether writes are on.
package httpserve
