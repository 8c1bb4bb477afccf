package httpserve

// The write endpoints: POST /api/torrents adds a torrent, DELETE /api/torrents/{key}
// removes one. They exist only when Options has both a Control and a Token; every write
// request must then carry the token as a bearer token and must not come from another
// site's page.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"torrentfs/metainfo"
)

// Control changes the set of torrents; cmd adapts the library to it, so this package
// never imports the library.
type Control interface {
	// Add adds the torrent of a .torrent file's bytes or of a magnet link (a.Torrent or
	// a.Magnet, already checked to parse) and returns its name and info-hash. It returns
	// at once; the torrent starts in the background. An error wrapping ErrExists means
	// the torrent is there already; ErrInvalid, that it cannot be added (e.g. a torrent
	// whose pieces cannot be verified).
	Add(ctx context.Context, a AddRequest) (name string, h metainfo.Hash, err error)
	// Remove stops the torrent named key (its name, or its info-hash in hex, as torrentfs
	// rm takes it), deleting its cache too with deleteCache. An error wrapping
	// ErrNotFound means no torrent has that key; ErrInvalid, that the key is ambiguous.
	Remove(key string, deleteCache bool) error
}

// AddRequest is a torrent to add: one of Torrent and Magnet is set.
type AddRequest struct {
	Torrent []byte // a .torrent file's bytes
	Magnet  string // a magnet link
	Origin  string // where it came from, for listings: "http", or "http:<file name>"
}

// Errors a Control wraps, answered 409, 404 and 400.
var (
	ErrExists   = errors.New("already added")
	ErrNotFound = errors.New("no such torrent")
	ErrInvalid  = errors.New("cannot be added")
)

// maxAddBody bounds a POST /api/torrents body: a .torrent of a very large torrent is a
// few MiB.
const maxAddBody = 8 << 20

// writable tells whether the write endpoints are on.
func (o *Options) writable() bool { return o.Control != nil && o.Token != "" }

// authorizeWrite answers a write request that may not go on (cross-site: 403; no or a
// wrong token: 401) and tells whether it may.
func (s *Server) authorizeWrite(w http.ResponseWriter, r *http.Request) bool {
	if err := sameOrigin(r); err != nil {
		s.opts.Log.Infof("http: refused %s %s from %s: %v", r.Method, r.URL.Path, r.RemoteAddr, err)
		http.Error(w, err.Error(), http.StatusForbidden)
		return false
	}
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="torrentfs"`)
		http.Error(w, "this request needs the server's token: Authorization: Bearer TOKEN", http.StatusUnauthorized)
		return false
	}
	// Hashing first makes the comparison take the same time whatever the lengths.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(s.opts.Token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		s.opts.Log.Infof("http: refused %s %s from %s: wrong token", r.Method, r.URL.Path, r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="torrentfs", error="invalid_token"`)
		http.Error(w, "wrong token", http.StatusUnauthorized)
		return false
	}
	return true
}

// bearerToken is the token of an "Authorization: Bearer TOKEN" header (the scheme in any
// case, RFC 7235).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// sameOrigin refuses a request a browser sent for another site's page: its Origin, when
// it has one, must name the host the request was sent to, and a browser that says the
// request is cross-site is believed. Tools (curl, scripts) send neither header.
func sameOrigin(r *http.Request) error {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return errors.New("cross-site request refused")
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return fmt.Errorf("cross-site request refused: Origin %q is not %s", o, r.Host)
	}
	return nil
}

// httpError is a request's failure with the status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (s *Server) handleAdd(w http.ResponseWriter, r *http.Request) {
	a, herr := readAdd(r.Header.Get("Content-Type"), http.MaxBytesReader(w, r.Body, maxAddBody))
	if herr != nil {
		http.Error(w, herr.msg, herr.status)
		return
	}
	name, h, err := s.opts.Control.Add(r.Context(), a)
	if err != nil {
		http.Error(w, err.Error(), controlStatus(err))
		return
	}
	s.opts.Log.Infof("http: %s added %s (%s)", r.RemoteAddr, name, h)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(struct {
		Name     string `json:"name"`
		InfoHash string `json:"infohash"`
	}{name, h.HexString()})
}

func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	var del bool
	switch d := r.URL.Query().Get("delete"); d {
	case "", "0", "false":
	case "1", "true":
		del = true
	default:
		http.Error(w, fmt.Sprintf("delete=%q: want 1 or 0", d), http.StatusBadRequest)
		return
	}
	key := r.PathValue("key")
	if err := s.opts.Control.Remove(key, del); err != nil {
		http.Error(w, err.Error(), controlStatus(err))
		return
	}
	s.opts.Log.Infof("http: %s removed %s (delete cache: %v)", r.RemoteAddr, key, del)
	w.WriteHeader(http.StatusNoContent)
}

// handleServer tells what this server allows, for the status page.
func (s *Server) handleServer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(struct {
		Writes bool `json:"writes"`
	}{s.opts.writable()})
}

func controlStatus(err error) int {
	switch {
	case errors.Is(err, ErrExists):
		return http.StatusConflict
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// readAdd reads a POST /api/torrents body of the given Content-Type: a magnet link
// (text/plain, or a form's field "magnet"), a .torrent file's bytes
// (application/x-bittorrent), or a multipart form with a file "torrent" or a field
// "magnet" (an HTML form's upload). Without a Content-Type the body says which it is.
// What it returns parses.
func readAdd(contentType string, body io.Reader) (AddRequest, *httpError) {
	a := AddRequest{Origin: "http"}
	mt, params := "", map[string]string(nil)
	if contentType != "" {
		var err error
		if mt, params, err = mime.ParseMediaType(contentType); err != nil {
			return a, badRequest("Content-Type %q: %v", contentType, err)
		}
	}
	if mt == "multipart/form-data" {
		return readMultipartAdd(body, params["boundary"])
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return a, bodyError(err)
	}
	switch mt {
	case "application/x-bittorrent":
		a.Torrent = b
	case "text/plain":
		a.Magnet = string(b)
	case "application/x-www-form-urlencoded":
		if isMagnet(b) {
			a.Magnet = string(b) // curl -d 'magnet:?...' sends a bare link under this type
			break
		}
		q, err := url.ParseQuery(string(b))
		if err != nil {
			return a, badRequest("form: %v", err)
		}
		a.Magnet = q.Get("magnet")
	case "":
		if isMagnet(b) {
			a.Magnet = string(b)
		} else {
			a.Torrent = b
		}
	default:
		return a, &httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %s: want application/x-bittorrent (a .torrent file), text/plain (a magnet link), application/x-www-form-urlencoded (field magnet) or multipart/form-data (file torrent or field magnet)", mt)}
	}
	return a, checkAdd(&a)
}

func isMagnet(b []byte) bool { return metainfo.IsMagnet(string(bytes.TrimSpace(b))) }

// readMultipartAdd reads a multipart form's file "torrent" and field "magnet", skipping
// other parts. Nothing is kept on disk: the body is bounded.
func readMultipartAdd(body io.Reader, boundary string) (AddRequest, *httpError) {
	a := AddRequest{Origin: "http"}
	if boundary == "" {
		return a, badRequest("multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(body, boundary)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return a, bodyError(err)
		}
		name, file := p.FormName(), p.FileName()
		b, err := io.ReadAll(p)
		p.Close()
		if err != nil {
			return a, bodyError(err)
		}
		switch {
		case name == "torrent" && len(b) > 0:
			if a.Torrent != nil {
				return a, badRequest("several torrent files: add one at a time")
			}
			a.Torrent = b
			if file != "" {
				a.Origin = "http:" + file
			}
		case name == "magnet":
			if m := strings.TrimSpace(string(b)); m != "" {
				a.Magnet = m
			}
		}
	}
	return a, checkAdd(&a)
}

// bodyError is the answer to a body that could not be read: too large (413) or cut off.
func bodyError(err error) *httpError {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mb.Limit)}
	}
	return badRequest("read the request body: %v", err)
}

// checkAdd makes sure a has one torrent or link, and that it parses.
func checkAdd(a *AddRequest) *httpError {
	a.Magnet = strings.TrimSpace(a.Magnet)
	switch {
	case a.Torrent != nil && a.Magnet != "":
		return badRequest("give a .torrent file or a magnet link, not both")
	case a.Magnet != "":
		if !metainfo.IsMagnet(a.Magnet) {
			return badRequest("not a magnet link (want magnet:?xt=urn:btih:...)")
		}
		if _, err := metainfo.ParseMagnet(a.Magnet); err != nil {
			return badRequest("bad magnet link: %v", err)
		}
	case len(a.Torrent) > 0:
		if _, err := metainfo.Parse(a.Torrent); err != nil {
			return badRequest("not a valid .torrent file: %v", err)
		}
	default:
		return badRequest("nothing to add: send a .torrent file or a magnet link")
	}
	return nil
}
