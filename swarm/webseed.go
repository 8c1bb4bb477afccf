package swarm

// Web seeds (BEP 19), the HTTP side: where a torrent's bytes are on an origin server, how a
// range of the torrent is fetched from it, and the goroutine that fetches one job. The
// loop's side (who gets which blocks, backoff, blame) is in webseed_run.go.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"torrentfs/metainfo"
	"torrentfs/picker"
)

const (
	// webDialTimeout, webHeaderTimeout and webIdleTimeout bound connecting, waiting for a
	// response's header, and a body that stops sending.
	webDialTimeout   = 10 * time.Second
	webHeaderTimeout = 20 * time.Second
	webIdleTimeout   = 30 * time.Second
	// webMaxRedirects bounds the redirects followed for one request.
	webMaxRedirects = 5
	// webWholeFileMax is the largest file taken from a server that ignores Range and sends
	// the whole file with 200: small files are sliced, larger ones make the server useless.
	webWholeFileMax = 1 << 20
)

// newWebClient is the HTTP client of a Client's web seeds, shared by its torrents: bounded
// dials and waits, keep-alive connections, no transparent decompression (the bytes must be
// the file's), redirects within limits and to http(s) only.
func newWebClient(local netip.Addr) *http.Client {
	d := &net.Dialer{Timeout: webDialTimeout, KeepAlive: 30 * time.Second}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   webDialTimeout,
			ResponseHeaderTimeout: webHeaderTimeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   webSlots + 1,
			DisableCompression:    true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= webMaxRedirects {
				return fmt.Errorf("more than %d redirects", webMaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
			}
			return nil
		},
	}
}

// webFileURL is where file f of the torrent is on the web seed base (BEP 19): for a
// single-file torrent the URL is the file itself, or base + name when it ends in '/'; for
// several files it is base + name + '/' + path, each component percent-escaped.
func webFileURL(base string, info *metainfo.Info, f *metainfo.File) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q is not an http or https URL", base)
	}
	var comps []string
	p := u.EscapedPath()
	switch {
	case info.Single && !strings.HasSuffix(p, "/"):
		return u.String(), nil
	case info.Single:
		comps = []string{info.Name}
	default:
		comps = append([]string{info.Name}, f.Path...)
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
	}
	for k, c := range comps {
		if k > 0 {
			p += "/"
		}
		p += url.PathEscape(c)
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return "", err
	}
	u.Path, u.RawPath = dec, p
	return u.String(), nil
}

// contentRange is a parsed Content-Range header of a 206 response: bytes First..Last
// (inclusive) of a resource of Size bytes, Size -1 when the server wrote '*'.
type contentRange struct {
	First, Last, Size int64
}

// parseContentRange reads "bytes FIRST-LAST/SIZE" (RFC 9110 14.4; SIZE may be '*').
func parseContentRange(s string) (contentRange, error) {
	bad := func() (contentRange, error) { return contentRange{}, fmt.Errorf("bad Content-Range %q", s) }
	unit, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return bad()
	}
	rng, size, ok := strings.Cut(strings.TrimLeft(rest, " "), "/")
	if !ok {
		return bad()
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return bad()
	}
	var cr contentRange
	var err error
	if cr.First, err = parseDigits(first); err != nil {
		return bad()
	}
	if cr.Last, err = parseDigits(last); err != nil || cr.Last < cr.First {
		return bad()
	}
	cr.Size = -1
	if size != "*" {
		if cr.Size, err = parseDigits(size); err != nil || cr.Last >= cr.Size {
			return bad()
		}
	}
	return cr, nil
}

// parseDigits parses a non-negative decimal of digits only (no sign, no spaces).
func parseDigits(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, errors.New("not a number")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// webHTTPError is a response that was not the bytes asked for.
type webHTTPError struct {
	status     int
	retryAfter time.Duration // from a 503's Retry-After, 0 when none
}

func (e *webHTTPError) Error() string { return "HTTP " + strconv.Itoa(e.status) }

// webJob is one unit of a web seed's work: blocks the picker gave it, sorted, fetched by
// one goroutine in as few range requests as they allow. Immutable but for the loop-owned
// fields.
type webJob struct {
	ws      *webSeed
	blocks  []picker.Block
	ctx     context.Context
	cancel  context.CancelFunc
	started time.Time
	size    int64 // bytes of its blocks
	// loop-owned
	next int   // blocks delivered so far (they come in order)
	left int64 // bytes still to come
}

// Events from a web seed's fetch goroutines to the loop.
type (
	webBlock struct {
		job  *webJob
		b    picker.Block
		data []byte
		buf  *[]byte
	}
	webDone struct {
		job *webJob
		err error // nil when every block was delivered
	}
)

// webFetch runs one job on its own goroutine: each run of blocks contiguous in the torrent
// is read through one stream of range requests (one per file it spans) and handed to the
// loop block by block, as it arrives.
func (t *Torrent) webFetch(j *webJob) {
	defer t.wg.Done()
	err := t.webFetchRuns(j)
	select {
	case t.events <- webDone{job: j, err: err}:
	case <-t.closing:
	}
}

func (t *Torrent) webFetchRuns(j *webJob) error {
	for _, r := range webRuns(t.info, j.blocks) {
		if err := t.webFetchRun(j, r.blocks, r.off, r.n); err != nil {
			return err
		}
	}
	return nil
}

// webRun is blocks that follow each other in the torrent: n bytes from off.
type webRun struct {
	blocks []picker.Block
	off, n int64
}

// webRuns cuts sorted blocks into runs, each read with one range request per file.
func webRuns(info *metainfo.Info, blocks []picker.Block) []webRun {
	var out []webRun
	for k, b := range blocks {
		off := info.PieceOffset(b.Piece) + int64(b.Begin)
		if last := len(out) - 1; last >= 0 && out[last].off+out[last].n == off {
			out[last].blocks = blocks[k-len(out[last].blocks) : k+1]
			out[last].n += int64(b.Length)
			continue
		}
		out = append(out, webRun{blocks: blocks[k : k+1], off: off, n: int64(b.Length)})
	}
	return out
}

func (t *Torrent) webFetchRun(j *webJob, blocks []picker.Block, off, n int64) error {
	r := &webRangeReader{ctx: j.ctx, client: t.c.webClient(), ws: j.ws, info: t.info, spans: t.info.Spans(off, n)}
	defer r.close()
	for _, b := range blocks {
		bp := t.blockPool.Get().(*[]byte)
		if cap(*bp) < b.Length {
			*bp = make([]byte, b.Length)
		}
		*bp = (*bp)[:b.Length]
		if _, err := io.ReadFull(r, *bp); err != nil {
			t.blockPool.Put(bp)
			return err
		}
		j.ws.received.Add(int64(b.Length))
		if l := t.c.downLimit; l != nil && !l.wait(b.Length, j.ctx.Done()) {
			t.blockPool.Put(bp)
			return j.ctx.Err()
		}
		select {
		case t.events <- webBlock{job: j, b: b, data: *bp, buf: bp}:
		case <-j.ctx.Done():
			t.blockPool.Put(bp)
			return j.ctx.Err()
		case <-t.closing:
			t.blockPool.Put(bp)
			return ErrClosed
		}
	}
	return nil
}

// webRangeReader reads the torrent bytes of spans in order: one range request per file
// span, opened when the span before it is used up; pad files read as zeros.
type webRangeReader struct {
	ctx    context.Context
	client *http.Client
	ws     *webSeed
	info   *metainfo.Info
	spans  []metainfo.FileSpan
	cur    io.Reader // what is left of the current span
	body   io.Closer // the current response's body
	stop   func()    // ends the current request's idle timer and context
}

func (r *webRangeReader) Read(p []byte) (int, error) {
	for r.cur == nil {
		if len(r.spans) == 0 {
			return 0, io.EOF
		}
		s := r.spans[0]
		r.spans = r.spans[1:]
		if err := r.open(s); err != nil {
			return 0, err
		}
	}
	n, err := r.cur.Read(p)
	if err == io.EOF {
		r.close()
		r.cur = nil
		err = nil
		if n == 0 {
			return r.Read(p)
		}
	}
	return n, err
}

// open starts span s: a request for exactly its bytes, whose body is read no further.
func (r *webRangeReader) open(s metainfo.FileSpan) error {
	f := &r.info.Files[s.File]
	if f.Padding {
		r.cur = io.LimitReader(zeros{}, s.Length)
		return nil
	}
	u, err := webFileURL(r.ws.url, r.info, f)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.ctx)
	idle := time.AfterFunc(webIdleTimeout, cancel)
	r.stop = func() { idle.Stop(); cancel() }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	last := s.FileOffset + s.Length - 1
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", s.FileOffset, last))
	req.Header.Set("User-Agent", "torrentfs/"+Version)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	r.body = resp.Body
	body := &idleReader{r: resp.Body, idle: idle}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return err
		}
		if cr.First != s.FileOffset || cr.Last != last || cr.Size >= 0 && cr.Size != f.Length {
			return fmt.Errorf("asked bytes %d-%d of %d, got %d-%d/%d", s.FileOffset, last, f.Length, cr.First, cr.Last, cr.Size)
		}
		r.cur = io.LimitReader(body, s.Length)
	case http.StatusOK:
		// The server ignored Range and sends the whole file: a small one is sliced.
		if f.Length > webWholeFileMax || resp.ContentLength >= 0 && resp.ContentLength != f.Length {
			return fmt.Errorf("no range support (200 for %d bytes of a %d-byte file)", resp.ContentLength, f.Length)
		}
		if _, err := io.CopyN(io.Discard, body, s.FileOffset); err != nil {
			return fmt.Errorf("whole-file response: %w", err)
		}
		r.cur = io.LimitReader(body, s.Length)
	default:
		e := &webHTTPError{status: resp.StatusCode}
		if resp.StatusCode == http.StatusServiceUnavailable {
			if secs, err := parseDigits(resp.Header.Get("Retry-After")); err == nil {
				e.retryAfter = time.Duration(min(secs, 24*3600)) * time.Second
			}
		}
		return e
	}
	return nil
}

func (r *webRangeReader) close() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// idleReader pushes its request's idle deadline back on every read that brings bytes.
type idleReader struct {
	r    io.Reader
	idle *time.Timer
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.idle.Reset(webIdleTimeout)
	}
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// webClient returns the client's HTTP client for web seeds, made on first use.
func (c *Client) webClient() *http.Client {
	c.webOnce.Do(func() { c.web = newWebClient(c.cfg.DialAddr) })
	return c.web
}
