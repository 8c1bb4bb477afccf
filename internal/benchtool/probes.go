package main

// The probes: child processes that read from a mount and print what they saw as JSON on
// stdout. Each times only its own reads, so process start-up is not counted.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// probeReadAt: benchtool readat FILE OFFSET LENGTH prints the seconds taken to open FILE
// and read LENGTH bytes at OFFSET.
func probeReadAt(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("want FILE OFFSET LENGTH")
	}
	off, err1 := strconv.ParseInt(args[1], 10, 64)
	n, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad offset or length")
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

// pacedResult is what a paced reader saw.
type pacedResult struct {
	Startup float64 `json:"startup"` // the first read, open included
	Blocked int     `json:"blocked"` // reads that took over stallLimit
	MaxRead float64 `json:"max_read"`
	Reads   int     `json:"reads"`
}

// stallLimit is how long a read or a frozen picture may last before a viewer notices.
const stallLimit = 500 * time.Millisecond

// probePaced: benchtool paced FILE BYTES_PER_SECOND SECONDS reads FILE from the start in
// 64 KiB reads, each due when a player at that bitrate would want it, for SECONDS.
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
	f, err := os.Open(args[0])
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
		n, err := f.Read(buf)
		d := time.Since(r0)
		if i == 0 {
			res.Startup = d.Seconds()
		} else if d > stallLimit {
			res.Blocked++
		}
		res.MaxRead = max(res.MaxRead, d.Seconds())
		res.Reads++
		if err == io.EOF || n == 0 {
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

// probePlay: benchtool play FILE SECONDS plays FILE in real time (ffmpeg -re) to a null
// output for SECONDS of media and reports start-up and stalls.
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
