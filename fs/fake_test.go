package fs

import (
	"time"

	"torrentfs/internal/faketorrent"
	"torrentfs/metainfo"
)

// fakeTorrent holds a torrent's bytes in memory; pieces become available when a test says.
type fakeTorrent = faketorrent.Torrent

type fakeFile struct {
	path []string
	n    int64
	pad  bool
}

func newFake(name string, pieceLen int64, files ...fakeFile) *fakeTorrent {
	info := &metainfo.Info{Name: name, PieceLength: pieceLen, Single: len(files) == 1 && files[0].path == nil}
	for _, f := range files {
		info.Files = append(info.Files, metainfo.File{Path: f.path, Length: f.n, Offset: info.TotalLength, Padding: f.pad})
		info.TotalLength += f.n
	}
	info.Pieces = make([]metainfo.Hash, (info.TotalLength+pieceLen-1)/pieceLen)
	data := make([]byte, info.TotalLength)
	for i := range data {
		data[i] = byte(i*13 + i>>9)
	}
	for _, f := range info.Files {
		if f.Padding {
			clear(data[f.Offset : f.Offset+f.Length])
		}
	}
	return faketorrent.New(info, data)
}

// newFS is a file system showing ft as its one torrent, named as ft's info says.
func newFS(ft *fakeTorrent, o Options) *FS {
	f := New(o)
	f.Add(ft.Info().Name, time.Time{}).Show(ft)
	return f
}
