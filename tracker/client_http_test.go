package tracker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

func clientTestHash(b byte) (h [20]byte) {
	for i := range h {
		h[i] = b + byte(i)
	}
	return h
}

func clientBencode(t testing.TB, v any) string {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// httpReplyServer serves body with status to every request and records the queries.
func httpReplyServer(t *testing.T, status int, body string) (*httptest.Server, chan url.Values) {
	t.Helper()
	queries := make(chan url.Values, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case queries <- r.URL.Query():
		default:
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, queries
}

func TestHTTPAnnounceQuery(t *testing.T) {
	srv, queries := httpReplyServer(t, 200, clientBencode(t, map[string]any{"interval": 60}))
	req := AnnounceRequest{
		// Bytes that need escaping, including space, '+', '%' and non-ASCII.
		InfoHash:   [20]byte{0x00, ' ', '+', '%', 0xff, 'a', '~', '&', '='},
		PeerID:     [20]byte{'-', 'T', 'F', '0', '0', '0', '1', '-', 0x80, 0x7f},
		Port:       6881,
		Uploaded:   10,
		Downloaded: 20,
		Left:       30,
		Event:      EventStarted,
		NumWant:    25,
		Key:        0xdeadbeef,
		TrackerID:  "tid 1",
	}
	if _, err := Announce(context.Background(), srv.URL+"/announce?passkey=abc", req); err != nil {
		t.Fatal(err)
	}
	q := <-queries
	want := map[string]string{
		"passkey":    "abc",
		"info_hash":  string(req.InfoHash[:]),
		"peer_id":    string(req.PeerID[:]),
		"port":       "6881",
		"uploaded":   "10",
		"downloaded": "20",
		"left":       "30",
		"event":      "started",
		"numwant":    "25",
		"compact":    "1",
		"key":        "deadbeef",
		"trackerid":  "tid 1",
	}
	for k, v := range want {
		if got := q.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	// A regular announce has no event and, with NumWant -1, no numwant.
	req.Event, req.NumWant = EventNone, -1
	if _, err := Announce(context.Background(), srv.URL+"/announce", req); err != nil {
		t.Fatal(err)
	}
	q = <-queries
	for _, k := range []string{"event", "numwant", "passkey"} {
		if q.Has(k) {
			t.Errorf("%s sent: %q", k, q.Get(k))
		}
	}
}

func TestHTTPEscapeBytes(t *testing.T) {
	got := httpEscapeBytes([]byte{'a', 'Z', '9', '-', '.', '_', '~', ' ', '+', 0, 0xff})
	if want := "aZ9-._~%20%2B%00%FF"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestHTTPAnnounceReplies(t *testing.T) {
	v4 := netip.MustParseAddrPort("10.1.2.3:6881")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:51413")
	compact4 := string(append(v4.Addr().AsSlice(), 0x1a, 0xe1))
	compact6 := string(append(v6.Addr().AsSlice(), 0xc8, 0xd5))
	tests := []struct {
		name    string
		body    string
		want    *AnnounceResponse
		wantErr string
	}{
		{
			name: "compact",
			body: clientBencode(t, map[string]any{
				"interval": 1800, "min interval": 900, "complete": 3, "incomplete": 7,
				"tracker id": "xyz", "peers": compact4 + string([]byte{127, 0, 0, 1, 0, 0}),
			}),
			want: &AnnounceResponse{
				Interval: 1800 * time.Second, MinInterval: 900 * time.Second, TrackerID: "xyz",
				Complete: 3, Incomplete: 7, Peers: []Peer{{Addr: v4}}, // port 0 skipped
			},
		},
		{
			name: "compact with peers6 and warning",
			body: clientBencode(t, map[string]any{
				"interval": 60, "peers": compact4, "peers6": compact6, "warning message": "slow down",
			}),
			want: &AnnounceResponse{
				Interval: time.Minute, Warning: "slow down", Peers: []Peer{{Addr: v4}, {Addr: v6}},
			},
		},
		{
			name: "non-compact",
			body: clientBencode(t, map[string]any{
				"interval": 60,
				"peers": []any{
					map[string]any{"ip": "10.1.2.3", "port": 6881, "peer id": "AAAAAAAAAAAAAAAAAAAA"},
					map[string]any{"ip": "2001:db8::1", "port": 51413},
					map[string]any{"ip": "host.example", "port": 1},    // names are skipped
					map[string]any{"ip": "10.0.0.1", "port": 70000},    // invalid port skipped
					map[string]any{"ip": "::ffff:10.0.0.2", "port": 2}, // mapped v4 unmapped
				},
			}),
			want: &AnnounceResponse{Interval: time.Minute, Peers: []Peer{
				{Addr: v4, ID: []byte("AAAAAAAAAAAAAAAAAAAA")},
				{Addr: v6},
				{Addr: netip.MustParseAddrPort("10.0.0.2:2")},
			}},
		},
		{
			name: "empty peers, negative counts clamped",
			body: "d8:completei-5e8:intervali-1e5:peers0:e",
			want: &AnnounceResponse{Peers: []Peer{}},
		},
		{
			name:    "failure reason",
			body:    clientBencode(t, map[string]any{"failure reason": "torrent not registered"}),
			wantErr: "tracker failure: torrent not registered",
		},
		{name: "garbage", body: "<html>502 Bad Gateway</html>", wantErr: "not a bencoded dictionary"},
		{name: "empty", body: "", wantErr: "not a bencoded dictionary"},
		{name: "list", body: "li1ee", wantErr: "not a bencoded dictionary"},
		{name: "truncated", body: "d8:intervali60e5:peers6:abc", wantErr: "not a bencoded dictionary"},
		{name: "trailing bytes", body: "d8:intervali60eeXYZ", wantErr: "not a bencoded dictionary"},
		{name: "interval not int", body: "d8:interval2:60e", wantErr: `"interval" is not an integer`},
		{name: "compact wrong length", body: "d5:peers5:abcdee", wantErr: "not a multiple of 6"},
		{name: "peers6 wrong length", body: "d6:peers66:abcdefe", wantErr: "not a multiple of 18"},
		{name: "peers wrong type", body: "d5:peersi3ee", wantErr: `"peers" is not a string`},
		{name: "peer entry not dict", body: "d5:peersli1eee", wantErr: "peer list"},
		{name: "huge string length", body: "d5:peers99999999999:e", wantErr: "not a bencoded dictionary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := httpReplyServer(t, 200, tt.body)
			got, err := Announce(context.Background(), srv.URL+"/announce", AnnounceRequest{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestHTTPAnnounceErrors(t *testing.T) {
	t.Run("status with failure reason", func(t *testing.T) {
		srv, _ := httpReplyServer(t, 403, clientBencode(t, map[string]any{"failure reason": "banned client"}))
		_, err := Announce(context.Background(), srv.URL+"/announce", AnnounceRequest{})
		if err == nil || !strings.Contains(err.Error(), "banned client") || !strings.Contains(err.Error(), "403") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("status without body", func(t *testing.T) {
		srv, _ := httpReplyServer(t, 502, "")
		_, err := Announce(context.Background(), srv.URL+"/announce", AnnounceRequest{})
		if err == nil || !strings.Contains(err.Error(), "502") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("oversize", func(t *testing.T) {
		big := "d5:peers" + "5242880:" + strings.Repeat("x", 5<<20) + "e"
		srv, _ := httpReplyServer(t, 200, big)
		_, err := Announce(context.Background(), srv.URL+"/announce", AnnounceRequest{})
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("slow server", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := Announce(ctx, srv.URL+"/announce", AnnounceRequest{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL
		srv.Close()
		_, err := Announce(context.Background(), u+"/announce?passkey=secret", AnnounceRequest{})
		if err == nil {
			t.Fatal("no error from a closed port")
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "info_hash") {
			t.Errorf("error repeats the query: %v", err)
		}
	})
	t.Run("unsupported scheme", func(t *testing.T) {
		_, err := Announce(context.Background(), "wss://example.org/announce", AnnounceRequest{})
		if !errors.Is(err, ErrUnsupportedScheme) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestHTTPScrapeURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://t.example/announce", "http://t.example/scrape"},
		{"http://t.example/x/announce?passkey=1", "http://t.example/x/scrape?passkey=1"},
		{"http://t.example/announce.php", "http://t.example/scrape.php"},
		{"https://t.example:8443/a/announce%20x", "https://t.example:8443/a/scrape%20x"},
		{"http://t.example/a", ""},
		{"http://t.example/announce/x", ""},
		{"http://t.example", ""},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := httpScrapeURL(u)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("%s: got %s, want an error", tt.in, got)
		case tt.want != "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.want != "" && got.String() != tt.want:
			t.Errorf("%s: got %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestHTTPScrape(t *testing.T) {
	h1, h2 := clientTestHash(1), clientTestHash(2)
	body := clientBencode(t, map[string]any{"files": map[string]any{
		string(h1[:]): map[string]any{"complete": 5, "downloaded": 50, "incomplete": 10},
		string(h2[:]): map[string]any{"complete": 1},
		"short":       map[string]any{"complete": 9},
	}})
	var gotPath string
	var gotHashes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath = r.URL.Path
		gotHashes = r.URL.Query()["info_hash"]
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	stats, err := Scrape(context.Background(), srv.URL+"/announce", [][20]byte{h1, h2})
	if err != nil {
		t.Fatal(err)
	}
	if gotPath != "/scrape" {
		t.Errorf("path %q", gotPath)
	}
	if len(gotHashes) != 2 || gotHashes[0] != string(h1[:]) || gotHashes[1] != string(h2[:]) {
		t.Errorf("info_hash params %q", gotHashes)
	}
	want := map[[20]byte]ScrapeStats{h1: {Complete: 5, Downloaded: 50, Incomplete: 10}, h2: {Complete: 1}}
	if !reflect.DeepEqual(stats, want) {
		t.Errorf("got %+v, want %+v", stats, want)
	}

	if _, err := Scrape(context.Background(), srv.URL+"/a", [][20]byte{h1}); err == nil {
		t.Error("scrape of an announce URL without /announce: no error")
	}
}

func TestHTTPScrapeReplies(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
		wantN               int
	}{
		{name: "no files", body: "de", wantN: 0},
		{name: "failure", body: "d14:failure reason4:nopee", wantErr: "tracker failure: nope"},
		{name: "files not dict", body: "d5:filesi1ee", wantErr: "not a dictionary"},
		{name: "entry not dict", body: "d5:filesd20:aaaaaaaaaaaaaaaaaaaai1eee", wantErr: "files"},
		{name: "count not int", body: "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:complete1:xeee", wantErr: "not an integer"},
		{name: "garbage", body: "nope", wantErr: "not a bencoded dictionary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := httpParseScrapeReply([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.wantN {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func FuzzHTTPAnnounceReply(f *testing.F) {
	f.Add([]byte("d8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e"))
	f.Add([]byte("d8:intervali60e5:peersld2:ip8:10.0.0.17:peer id20:AAAAAAAAAAAAAAAAAAAA4:porti1eeee"))
	f.Add([]byte("d6:peers618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01e"))
	f.Add([]byte("d14:failure reason5:nope!e"))
	f.Add([]byte("d15:warning message2:hi10:tracker id1:x8:completei1e10:incompletei2e12:min intervali5ee"))
	f.Add([]byte("d5:peers99999999999:e"))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := httpParseAnnounceReply(b)
		if err == nil && resp == nil {
			t.Fatal("nil response without error")
		}
		if err != nil {
			return
		}
		for _, p := range resp.Peers {
			if !p.Addr.IsValid() || p.Addr.Port() == 0 {
				t.Fatalf("invalid peer %v", p.Addr)
			}
		}
		if resp.Interval < 0 || resp.Complete < 0 || resp.Incomplete < 0 {
			t.Fatalf("negative values in %+v", resp)
		}
	})
}

func FuzzHTTPScrapeReply(f *testing.F) {
	f.Add([]byte("d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:downloadedi2e10:incompletei3eeee"))
	f.Add([]byte("d14:failure reason4:nopee"))
	f.Add([]byte("d5:filesdee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		stats, err := httpParseScrapeReply(b)
		if err != nil {
			return
		}
		for h, st := range stats {
			if st.Complete < 0 || st.Downloaded < 0 || st.Incomplete < 0 {
				t.Fatalf("%x: negative counts %+v", h, st)
			}
		}
		// A parsed reply re-encoded must not be longer than it came in (no invented data).
		if len(stats)*20 > len(b) {
			t.Fatalf("%d entries from %d bytes", len(stats), len(b))
		}
	})
}
