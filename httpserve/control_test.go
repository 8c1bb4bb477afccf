package httpserve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"torrentfs/metainfo"
)

// fakeControl keeps names by info-hash, as the library would, and records what it did.
type fakeControl struct {
	mu      sync.Mutex
	names   map[metainfo.Hash]string
	origins []string
	removed []string // key, with " +cache" when the cache went too
}

func newFakeControl() *fakeControl { return &fakeControl{names: map[metainfo.Hash]string{}} }

// record is what was added (their origins) and removed so far.
func (c *fakeControl) record() (origins, removed []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.origins...), append([]string(nil), c.removed...)
}

func (c *fakeControl) Add(ctx context.Context, a AddRequest) (string, metainfo.Hash, error) {
	var h metainfo.Hash
	var name string
	switch {
	case a.Torrent != nil:
		mi, err := metainfo.Parse(a.Torrent)
		if err != nil {
			return "", h, fmt.Errorf("the server let through a bad torrent: %v", err)
		}
		h, name = mi.InfoHash, mi.Info.Name
	default:
		m, err := metainfo.ParseMagnet(a.Magnet)
		if err != nil {
			return "", h, fmt.Errorf("the server let through a bad link: %v", err)
		}
		h, name = m.InfoHash, m.DisplayName
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.names[h]; ok {
		return "", h, fmt.Errorf("%s: %w as %q", h, ErrExists, old)
	}
	c.names[h] = name
	c.origins = append(c.origins, a.Origin)
	return name, h, nil
}

func (c *fakeControl) Remove(key string, deleteCache bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for h, name := range c.names {
		if key == name || strings.EqualFold(key, h.HexString()) {
			delete(c.names, h)
			if deleteCache {
				key += " +cache"
			}
			c.removed = append(c.removed, key)
			return nil
		}
	}
	return fmt.Errorf("%q: %w", key, ErrNotFound)
}

const testToken = "s3cret-token"

// torrentBytes makes a .torrent of one small file named name.
func torrentBytes(t *testing.T, name string) ([]byte, metainfo.Hash) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, bytes.Repeat([]byte(name), 5000), 0o644); err != nil {
		t.Fatal(err)
	}
	mi, b, err := metainfo.Create(context.Background(), p, metainfo.CreateOptions{NoDate: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	return b, mi.InfoHash
}

// send does a request with a body and headers (name, value, ...) and returns the
// response with its body read.
func send(t *testing.T, method, url string, body []byte, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func multipartBody(t *testing.T, fields map[string]string, file string, content []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != "" {
		fw, err := mw.CreateFormFile("torrent", file)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(content)
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func writeServer(t *testing.T) (*fakeControl, string) {
	t.Helper()
	c := newFakeControl()
	_, hs := start(t, Options{Control: c, Token: testToken})
	return c, hs.URL
}

var auth = []string{"Authorization", "Bearer " + testToken}

func TestHTTPWriteAuth(t *testing.T) {
	c, base := writeServer(t)
	link := "magnet:?xt=urn:btih:" + strings.Repeat("1", 40) + "&dn=film"
	host := strings.TrimPrefix(base, "http://")
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer " + testToken + "x"}, 401},
		{"a prefix of the token", []string{"Authorization", "Bearer " + testToken[:4]}, 401},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401},
		{"basic scheme", []string{"Authorization", "Basic " + testToken}, 401},
		{"bare token", []string{"Authorization", testToken}, 401},
		{"other site", append([]string{"Origin", "http://evil.example"}, auth...), 403},
		{"other port", append([]string{"Origin", "http://127.0.0.1:1"}, auth...), 403},
		{"null origin", append([]string{"Origin", "null"}, auth...), 403},
		{"browser says cross-site", append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"other site without a token", []string{"Origin", "http://evil.example"}, 403},
		// Accepted ones add the same torrent: the first is added, the others find it there.
		{"right token", auth, 201},
		{"scheme in lower case", []string{"Authorization", "bearer " + testToken}, 409},
		{"same origin", append([]string{"Origin", base, "Sec-Fetch-Site", "same-origin"}, auth...), 409},
		{"same origin, host in capitals", append([]string{"Origin", "http://" + strings.ToUpper(host)}, auth...), 409},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, "POST", base+"/api/torrents", []byte(link), append([]string{"Content-Type", "text/plain"}, tc.headers...)...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if wa := resp.Header.Get("WWW-Authenticate"); (tc.status == 401) != strings.HasPrefix(wa, "Bearer") {
				t.Errorf("WWW-Authenticate %q with status %d", wa, resp.StatusCode)
			}
		})
	}
	if added, _ := c.record(); len(added) != 1 {
		t.Errorf("%d torrents added, want 1", len(added))
	}
	// Deletes are guarded the same way.
	h := strings.Repeat("1", 40)
	if resp, _ := send(t, "DELETE", base+"/api/torrents/"+h, nil); resp.StatusCode != 401 {
		t.Errorf("DELETE without the token: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "DELETE", base+"/api/torrents/"+h, nil, append([]string{"Origin", "http://evil.example"}, auth...)...); resp.StatusCode != 403 {
		t.Errorf("DELETE from another site: %d", resp.StatusCode)
	}
	if _, removed := c.record(); len(removed) != 0 {
		t.Errorf("removed %v", removed)
	}
	// Reads need nothing.
	if resp, _ := get(t, "GET", base+"/api/torrents"); resp.StatusCode != 200 {
		t.Errorf("GET /api/torrents: %d", resp.StatusCode)
	}
}

func TestHTTPAddBodies(t *testing.T) {
	c, base := writeServer(t)
	tb, th := torrentBytes(t, "one.bin")
	tb2, th2 := torrentBytes(t, "two.bin")
	tb3, th3 := torrentBytes(t, "three.bin")
	hashOf := func(d string) metainfo.Hash {
		var h metainfo.Hash
		for i := range h {
			h[i] = 0x11 * byte(d[0]-'0')
		}
		return h
	}
	mag := func(d, dn string) string { return "magnet:?xt=urn:btih:" + strings.Repeat(d, 40) + "&dn=" + dn }
	form, formType := multipartBody(t, map[string]string{"note": "ignored", "magnet": ""}, "up.torrent", tb3)
	formMagnet, formMagnetType := multipartBody(t, map[string]string{"magnet": mag("4", "four")}, "", nil)
	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		wantName    string
		wantHash    metainfo.Hash
		origin      string
	}{
		{"torrent", "application/x-bittorrent", tb, "one.bin", th, "http"},
		{"torrent without a type", "", tb2, "two.bin", th2, "http"},
		{"multipart upload", formType, form, "three.bin", th3, "http:up.torrent"},
		{"multipart magnet", formMagnetType, formMagnet, "four", hashOf("4"), "http"},
		{"text magnet", "text/plain; charset=utf-8", []byte(mag("5", "five") + "\n"), "five", hashOf("5"), "http"},
		{"form field", "application/x-www-form-urlencoded", []byte("magnet=" + url.QueryEscape(mag("6", "six"))), "six", hashOf("6"), "http"},
		{"bare link as a form (curl -d)", "application/x-www-form-urlencoded", []byte(mag("7", "seven")), "seven", hashOf("7"), "http"},
		{"magnet without a type", "", []byte(mag("8", "eight")), "eight", hashOf("8"), "http"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, "POST", base+"/api/torrents", tc.body, append([]string{"Content-Type", tc.contentType}, auth...)...)
			if resp.StatusCode != 201 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got struct{ Name, InfoHash string }
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if got.Name != tc.wantName || got.InfoHash != tc.wantHash.HexString() {
				t.Errorf("added %+v, want %s %s", got, tc.wantName, tc.wantHash)
			}
			if added, _ := c.record(); added[len(added)-1] != tc.origin {
				t.Errorf("origin %q, want %q", added[len(added)-1], tc.origin)
			}
		})
	}
	// The same torrent again: the control's refusal, as a conflict.
	resp, body := send(t, "POST", base+"/api/torrents", tb, append([]string{"Content-Type", "application/x-bittorrent"}, auth...)...)
	if resp.StatusCode != 409 || !strings.Contains(body, "already added") {
		t.Errorf("duplicate: %d %s", resp.StatusCode, body)
	}
}

func TestHTTPAddBadInput(t *testing.T) {
	c, base := writeServer(t)
	tb, _ := torrentBytes(t, "one.bin")
	both, bothType := multipartBody(t, map[string]string{"magnet": "magnet:?xt=urn:btih:" + strings.Repeat("1", 40)}, "x.torrent", tb)
	empty, emptyType := multipartBody(t, map[string]string{"magnet": " "}, "", nil)
	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		status      int
		want        string // in the message
	}{
		{"truncated torrent", "application/x-bittorrent", tb[:len(tb)/2], 400, "not a valid .torrent"},
		{"not bencode", "application/x-bittorrent", []byte("hello"), 400, "not a valid .torrent"},
		{"empty torrent", "application/x-bittorrent", nil, 400, "nothing to add"},
		{"bad hash in a link", "text/plain", []byte("magnet:?xt=urn:btih:1234"), 400, "bad magnet link"},
		{"no hash in a link", "text/plain", []byte("magnet:?dn=x"), 400, "bad magnet link"},
		{"text that is no link", "text/plain", []byte("http://example.com/x.torrent"), 400, "not a magnet link"},
		{"form without the field", "application/x-www-form-urlencoded", []byte("link=x"), 400, "nothing to add"},
		{"bad form", "application/x-www-form-urlencoded", []byte("magnet=%zz"), 400, "form"},
		{"multipart with both", bothType, both, 400, "not both"},
		{"empty multipart form", emptyType, empty, 400, "nothing to add"},
		{"multipart without a boundary", "multipart/form-data", []byte("x"), 400, "boundary"},
		{"cut multipart", bothType, both[:len(both)-20], 400, "request body"},
		{"bad type", "a/b/c", tb, 400, "Content-Type"},
		{"other type", "application/json", []byte(`{"magnet":"x"}`), 415, "want application/x-bittorrent"},
		{"too big", "application/x-bittorrent", make([]byte, maxAddBody+1), 413, "larger than"},
		{"too big multipart", "multipart/form-data; boundary=b", append([]byte("--b\r\nContent-Disposition: form-data; name=\"torrent\"; filename=\"x\"\r\n\r\n"), make([]byte, maxAddBody)...), 413, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(t, "POST", base+"/api/torrents", tc.body, append([]string{"Content-Type", tc.contentType}, auth...)...)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("status %d %q, want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
	if added, _ := c.record(); len(added) != 0 {
		t.Errorf("%d added from bad input", len(added))
	}
}

func TestHTTPRemove(t *testing.T) {
	c, base := writeServer(t)
	link := func(d, dn string) []byte { return []byte("magnet:?xt=urn:btih:" + strings.Repeat(d, 40) + "&dn=" + dn) }
	for _, l := range [][]byte{link("a", "film"), link("b", "show two"), link("c", "other")} {
		if resp, body := send(t, "POST", base+"/api/torrents", l, append([]string{"Content-Type", "text/plain"}, auth...)...); resp.StatusCode != 201 {
			t.Fatalf("add: %d %s", resp.StatusCode, body)
		}
	}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/api/torrents/" + strings.Repeat("A", 40), 204},
		{"/api/torrents/" + strings.Repeat("a", 40), 404}, // gone
		{"/api/torrents/show%20two?delete=1", 204},
		{"/api/torrents/other?delete=yes", 400},
		{"/api/torrents/nope", 404},
		{"/api/torrents/", 404}, // no key
	} {
		resp, body := send(t, "DELETE", base+tc.path, nil, auth...)
		if resp.StatusCode != tc.status {
			t.Errorf("DELETE %s: status %d, want %d: %s", tc.path, resp.StatusCode, tc.status, body)
		}
	}
	_, removed := c.record()
	if got := strings.Join(removed, "|"); got != strings.Repeat("A", 40)+"|show two +cache" {
		t.Errorf("removed %q", got)
	}
	// Other methods on the write paths are not allowed, and say what is.
	resp, _ := send(t, "PUT", base+"/api/torrents", nil, auth...)
	if resp.StatusCode != 405 || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("PUT: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// Without a token (or without a control) nothing writes: every write is 405, as before
// writes existed, whatever the headers.
func TestHTTPReadOnlyWithoutToken(t *testing.T) {
	for _, opts := range []Options{{}, {Control: newFakeControl()}, {Token: testToken}} {
		_, hs := start(t, opts)
		for _, m := range []string{"POST", "DELETE", "PUT"} {
			for _, p := range []string{"/api/torrents", "/api/torrents/" + strings.Repeat("a", 40)} {
				resp, _ := send(t, m, hs.URL+p, []byte("magnet:?xt=urn:btih:"+strings.Repeat("a", 40)), append([]string{"Content-Type", "text/plain"}, auth...)...)
				if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
					t.Errorf("control %v, token %q: %s %s: %d, Allow %q", opts.Control != nil, opts.Token, m, p, resp.StatusCode, resp.Header.Get("Allow"))
				}
			}
		}
		_, body := get(t, "GET", hs.URL+"/api/server")
		if strings.TrimSpace(string(body)) != `{"writes":false}` {
			t.Errorf("/api/server: %s", body)
		}
	}
	_, base := writeServer(t)
	if _, body := get(t, "GET", base+"/api/server"); strings.TrimSpace(string(body)) != `{"writes":true}` {
		t.Errorf("/api/server with a token: %s", body)
	}
}

// FuzzReadAdd feeds request bodies of any type to the body reader: it must not panic, and
// what it accepts is exactly one torrent or link that parses.
func FuzzReadAdd(f *testing.F) {
	f.Add("text/plain", []byte("magnet:?xt=urn:btih:"+strings.Repeat("a", 40)))
	f.Add("application/x-www-form-urlencoded", []byte("magnet=magnet%3A%3Fxt%3Durn%3Abtih%3A"+strings.Repeat("b", 40)))
	f.Add("application/x-bittorrent", []byte("d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"))
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"magnet\"\r\n\r\nmagnet:?xt=urn:btih:"+strings.Repeat("c", 40)+"\r\n--b--\r\n"))
	f.Add("", []byte("d8:announce0:e"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		a, herr := readAdd(contentType, bytes.NewReader(body))
		if herr != nil {
			if herr.status < 400 || herr.status > 499 || herr.msg == "" {
				t.Fatalf("error %d %q", herr.status, herr.msg)
			}
			return
		}
		switch {
		case a.Torrent != nil && a.Magnet != "":
			t.Fatal("both a torrent and a link")
		case a.Torrent != nil:
			if _, err := metainfo.Parse(a.Torrent); err != nil {
				t.Fatalf("accepted a torrent that does not parse: %v", err)
			}
		default:
			if _, err := metainfo.ParseMagnet(a.Magnet); err != nil {
				t.Fatalf("accepted a link that does not parse: %v", err)
			}
		}
	})
}
