// Package library keeps the set of torrents one process serves (a mount of a whole
// library, or torrentfs serve): adding them while running (a .torrent's bytes or a magnet
// link), removing them (optionally with their cache), listing them, a control socket for
// the add/rm/ls commands, and a watched directory whose .torrent and .magnet files come and
// go with the torrents they name.
//
// The library decides names and lifecycles; it does not show anything. Views (the FUSE
// file system, the HTTP server) are told through the View interface: Added when a
// torrent's name is known (at once, even for a magnet), Ready when its files are known and
// its engine torrent runs, Removed when it goes. Engine work (fetching metadata, opening
// and checking storage, joining the swarm) is cmd's, reached through Engine.
//
// Who owns what:
//   - Library.mu guards the entries by info-hash (the swarm's: a v2-only torrent's v2 one,
//     truncated), their order, and each entry's name,
//     state, error, metainfo and started torrent. A magnet's entry is renamed once, from
//     its link's display name to the torrent's own name, before View.Ready.
//   - Each entry has one goroutine from Add until its torrent runs or fails: it fetches the
//     metadata (magnets), checks the storage and starts the torrent, then calls View.Ready.
//     Remove cancels it and waits for it before calling View.Removed, so a view sees
//     Added, then at most one Ready, then Removed, in that order, for each entry.
//   - A Watcher's map of files it added is owned by its one polling goroutine.
//   - The control server has an accept goroutine and one goroutine per connection; it
//     holds no state of its own beyond the listener.
package library
