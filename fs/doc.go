// Package fs shows a torrent as a read-only FUSE file system (bazil.org/fuse): M/<name> for
// a single-file torrent, M/<name>/<path...> for several, pad files hidden. The tree is
// built once from the metainfo, so listing and stat never wait for the network; reads go
// through one reader.Head per open handle.
//
// Who owns what:
//   - The node tree (dirs, files, inode numbers) is immutable after New.
//   - Each file's cached "bytes present" figure (st_blocks, the progress xattr) is guarded
//     by that file's mutex.
//   - Each handle's reader.Head guards its own state; the handle itself is immutable.
//   - FS.closing is closed once by Close; every blocked read watches it and fails with EIO.
//   - Server runs the bazil serve loop in one goroutine; Unmount stops and waits for it.
//
// Errors are syscall.Errno values: EINTR for a read the kernel interrupted, EIO after Close
// or when Options.ReadTimeout expires, EROFS for a write open.
package fs
