package httpserve

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/goleak"

	"torrentfs/internal/faketorrent"
	"torrentfs/internal/testutil"
	"torrentfs/metainfo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is an in-memory torrent with the identity and stats the server asks for.
type fake struct {
	*faketorrent.Torrent
	hash metainfo.Hash
}

func (f *fake) InfoHash() metainfo.Hash { return f.hash }

func (f *fake) Stats() Stats {
	s := Stats{Peers: 3, Seeds: 1, Downloaded: 1000, Uploaded: 10, DownRate: 512, UpRate: 2}
	for i := range f.Info().NumPieces() {
		if f.HasPiece(i) {
			s.PiecesDone++
		}
	}
	return s
}

type ffile struct {
	path []string
	size int64
}

// newFake makes a multi-file torrent named name with 64 KiB pieces; byte i of the stream is
// a pattern that lines up with no piece or file boundary.
func newFake(name string, hashByte byte, files ...ffile) *fake {
	const pieceLen = 64 << 10
	info := &metainfo.Info{Name: name, PieceLength: pieceLen}
	for _, f := range files {
		info.Files = append(info.Files, metainfo.File{Path: f.path, Length: f.size, Offset: info.TotalLength})
		info.TotalLength += f.size
	}
	info.Pieces = make([]metainfo.Hash, (info.TotalLength+pieceLen-1)/pieceLen)
	data := make([]byte, info.TotalLength)
	for i := range data {
		data[i] = byte(i*7 + i/1021)
	}
	var h metainfo.Hash
	for i := range h {
		h[i] = hashByte
	}
	return &fake{Torrent: faketorrent.New(info, data), hash: h}
}

// fileBytes is file i's content.
func (f *fake) fileBytes(i int) []byte {
	fl := f.Info().Files[i]
	return f.Data()[fl.Offset : fl.Offset+fl.Length]
}

// start serves the torrents on a loopback test server; both stop with the test.
func start(t *testing.T, opts Options, ts ...Torrent) (*Server, *httptest.Server) {
	t.Helper()
	opts.Log = testutil.Log(t)
	s := New(opts, ts...)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Client().CloseIdleConnections()
		hs.Close()
		s.Close()
	})
	return s, hs
}

// get does a request with headers (name, value, ...) and returns the response with its
// body read.
func get(t *testing.T, method, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	resp, b := send(t, method, url, nil, headers...)
	return resp, []byte(b)
}
