package main

// The probes: child processes that read from a mount and print what they saw as JSON on
// stdout. Each times only its own reads, so process start-up is not counted.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// probeReadAt: benchtool readat FILE OFFSET LENGTH prints the seconds taken to open FILE
// and read LENGTH bytes at OFFSET. FILE may be an http:// URL: then the read is one GET
// with a Range of those bytes, and a second number follows, the seconds until the first
// body byte.
func probeReadAt(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want FILE OFFSET LENGTH")
	}
	off, err1 := strconv.ParseInt(args[1], 10, 64)
	n, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || off < 0 || n <= 0 {
		return fmt.Errorf("bad offset or length")
	}
	if isURL(args[0]) {
		first, done, err := readRangeHTTP(args[0], off, n)
		if err != nil {
			return err
		}
		fmt.Printf("%.6f %.6f\n", done.Seconds(), first.Seconds())
		return nil
	}
	buf := make([]byte, n)
	t0 := time.Now()
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.ReadFull(io.NewSectionReader(f, off, int64(n)), buf); err != nil {
		return fmt.Errorf("read %d bytes at %d: %w", n, off, err)
	}
	fmt.Printf("%.6f\n", time.Since(t0).Seconds())
	return nil
}

// isURL tells whether a probe's FILE is an http:// URL (torrentfs's HTTP endpoint) rather
// than a path in a mount.
func isURL(s string) bool { return strings.HasPrefix(s, "http://") }

// probeClient talks to torrentfs's HTTP endpoint on loopback: no proxy, no compression,
// so the bytes timed are the server's bytes.
var probeClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// readRangeHTTP GETs bytes [off, off+n) of u and times the first body byte and the last.
func readRangeHTTP(u string, off int64, n int) (first, done time.Duration, err error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(n)-1))
	buf := make([]byte, n)
	t0 := time.Now()
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, 0, fmt.Errorf("GET %s bytes %d+%d: %s", u, off, n, resp.Status)
	}
	cr := resp.Header.Get("Content-Range")
	if start, end, _, err := parseContentRange(cr); err != nil || start != off || end != off+int64(n)-1 {
		return 0, 0, fmt.Errorf("GET %s bytes %d+%d: Content-Range %q", u, off, n, cr)
	}
	k, err := io.ReadAtLeast(resp.Body, buf, 1)
	first = time.Since(t0)
	if err == nil {
		_, err = io.ReadFull(resp.Body, buf[k:])
	}
	if err != nil {
		return 0, 0, fmt.Errorf("GET %s bytes %d+%d: %w", u, off, n, err)
	}
	return first, time.Since(t0), nil
}

// parseContentRange reads a 206 reply's "bytes START-END/SIZE" (SIZE may be "*"; then it
// is -1), checking that the range is well formed.
func parseContentRange(v string) (start, end, size int64, err error) {
	bad := fmt.Errorf("bad Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rg, sz, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	a, b, ok := strings.Cut(rg, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	num := func(s string) (int64, bool) {
		// Digits only: ParseInt would take a sign.
		if s == "" || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	var ok1, ok2 bool
	if start, ok1 = num(a); !ok1 {
		return 0, 0, 0, bad
	}
	if end, ok2 = num(b); !ok2 || end < start {
		return 0, 0, 0, bad
	}
	size = -1
	if sz != "*" {
		if size, ok = num(sz); !ok || end >= size {
			return 0, 0, 0, bad
		}
	}
	return start, end, size, nil
}

// openSequential opens FILE for reading from its start: a file in a mount, or the body of
// a GET of the whole of a URL.
func openSequential(path string) (io.ReadCloser, error) {
	if !isURL(path) {
		return os.Open(path)
	}
	resp, err := probeClient.Get(path)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp.Body, nil
}

// probeFetch: benchtool fetch URL GETs the whole of URL and prints the body's SHA-256 and
// its length: what dd | sha256sum is for a file in a mount.
func probeFetch(args []string) error {
	if len(args) != 1 || !isURL(args[0]) {
		return fmt.Errorf("want URL")
	}
	body, err := openSequential(args[0])
	if err != nil {
		return err
	}
	defer body.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, body, make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w after %d bytes", args[0], err, n)
	}
	fmt.Printf("%x %d\n", h.Sum(nil), n)
	return nil
}

// pacedResult is what a paced reader saw.
type pacedResult struct {
	Startup float64 `json:"startup"` // the first read, open included
	Blocked int     `json:"blocked"` // reads that took over stallLimit
	MaxRead float64 `json:"max_read"`
	Reads   int     `json:"reads"`
}

// stallLimit is how long a read or a frozen picture may last before a viewer notices.
const stallLimit = 500 * time.Millisecond

// probePaced: benchtool paced FILE BYTES_PER_SECOND SECONDS reads FILE (or a URL's body)
// from the start in 64 KiB reads, each due when a player at that bitrate would want it,
// for SECONDS.
func probePaced(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want FILE BYTES_PER_SECOND SECONDS")
	}
	rate, err1 := strconv.ParseFloat(args[1], 64)
	secs, err2 := strconv.ParseFloat(args[2], 64)
	if err1 != nil || err2 != nil || rate <= 0 {
		return fmt.Errorf("bad rate or duration")
	}
	const chunk = 64 << 10
	interval := time.Duration(float64(chunk) / rate * float64(time.Second))
	buf := make([]byte, chunk)
	var res pacedResult
	t0 := time.Now()
	f, err := openSequential(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	end := t0.Add(time.Duration(secs * float64(time.Second)))
	for i := 0; time.Now().Before(end); i++ {
		// Pacing: a player asks for the next chunk when it is due, not earlier.
		if wait := time.Until(t0.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		r0 := time.Now()
		if i == 0 {
			r0 = t0
		}
		// Whole chunks: a file in a mount gives them anyway, an HTTP body comes in
		// whatever pieces TCP delivers.
		n, err := io.ReadFull(f, buf)
		d := time.Since(r0)
		if i == 0 {
			res.Startup = d.Seconds()
		} else if d > stallLimit {
			res.Blocked++
		}
		res.MaxRead = max(res.MaxRead, d.Seconds())
		res.Reads++
		if err == io.EOF || err == io.ErrUnexpectedEOF || n == 0 {
			break
		}
		if err != nil {
			return fmt.Errorf("read %d: %w", i, err)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// playStats follows ffmpeg's -progress output: when media time first advanced and how
// often it stood still for longer than stallLimit of wall time.
type playStats struct {
	start    time.Time
	last     time.Time // wall time of the last advance
	media    int64     // last out_time_us seen
	advanced bool

	Startup float64 `json:"startup"` // wall seconds until media time first advanced; -1 never
	Stalls  int     `json:"stalls"`
	MaxGap  float64 `json:"max_gap"` // longest wall time between advances after startup
	Media   float64 `json:"media"`   // media seconds played
}

func newPlayStats(start time.Time) *playStats {
	return &playStats{start: start, Startup: -1}
}

// line takes one line of -progress output read at now.
func (s *playStats) line(l string, now time.Time) {
	v, ok := strings.CutPrefix(strings.TrimSpace(l), "out_time_us=")
	if !ok {
		return
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil || us <= s.media {
		return
	}
	s.media = us
	s.Media = float64(us) / 1e6
	if !s.advanced {
		s.advanced = true
		s.Startup = now.Sub(s.start).Seconds()
		s.last = now
		return
	}
	gap := now.Sub(s.last)
	if gap > stallLimit {
		s.Stalls++
	}
	s.MaxGap = max(s.MaxGap, gap.Seconds())
	s.last = now
}

// finish counts a stall still going on when playback ended short of want media seconds.
func (s *playStats) finish(now time.Time, want float64) {
	if s.advanced && s.Media < want-0.5 && now.Sub(s.last) > stallLimit {
		s.Stalls++
		s.MaxGap = max(s.MaxGap, now.Sub(s.last).Seconds())
	}
}

// probePlay: benchtool play FILE SECONDS plays FILE (a path or a URL; ffmpeg reads either)
// in real time (ffmpeg -re) to a null output for SECONDS of media and reports start-up and
// stalls.
func probePlay(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want FILE SECONDS")
	}
	secs, err := strconv.ParseFloat(args[1], 64)
	if err != nil {
		return fmt.Errorf("bad duration: %w", err)
	}
	// Reports every 50 ms, so start-up is known to that precision rather than ffmpeg's 0.5 s.
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-stats_period", "0.05", "-progress", "pipe:1", "-nostats",
		"-re", "-i", args[0], "-t", args[1], "-f", "null", "-")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	st := newPlayStats(time.Now())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ffmpeg: %w", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		st.line(sc.Text(), time.Now())
	}
	werr := cmd.Wait()
	st.finish(time.Now(), secs)
	if werr != nil && st.Media < secs-1 {
		return fmt.Errorf("ffmpeg: %w", werr)
	}
	return json.NewEncoder(os.Stdout).Encode(st)
}
