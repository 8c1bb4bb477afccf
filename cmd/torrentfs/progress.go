package main

// A one-line progress bar for long jobs (hashing in create, verification in seed, get). It
// draws only when its writer is a terminal, so scripts and tests see nothing. It has no
// goroutine: it redraws from Set/Add, at most every redrawEvery. Its mutex guards all of its
// state, so several workers may report into one bar.

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

const redrawEvery = 100 * time.Millisecond

type progress struct {
	w     io.Writer
	fd    int // the terminal's descriptor, for its width
	tty   bool
	label string
	total int64

	mu       sync.Mutex
	done     int64
	start    time.Time
	lastDraw time.Time
	finished bool
}

// newProgress makes a bar counting up to total (bytes). It is silent unless w is a terminal.
func newProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now()}
	if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.fd = true, int(f.Fd())
	}
	return p
}

// Set records that n bytes are done.
func (p *progress) Set(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = n
	p.maybeDraw()
}

// Add records n more bytes done.
func (p *progress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	p.maybeDraw()
}

// Done draws the final state and ends the line, so what is printed next starts clean.
func (p *progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func (p *progress) maybeDraw() {
	if !p.tty || p.finished {
		return
	}
	if now := time.Now(); now.Sub(p.lastDraw) >= redrawEvery {
		p.lastDraw = now
		p.draw()
	}
}

func (p *progress) draw() {
	width := 80
	if w, _, err := term.GetSize(p.fd); err == nil && w > 0 {
		width = w
	}
	fmt.Fprint(p.w, "\r"+progressLine(p.label, p.done, p.total, time.Since(p.start), width)+"\x1b[K")
}

// progressLine renders "label [=====>    ]  42%  1.2 GiB/3.0 GiB  95.1 MiB/s" in width columns.
func progressLine(label string, done, total int64, elapsed time.Duration, width int) string {
	frac := 0.0
	if total > 0 {
		frac = min(1, max(0, float64(done)/float64(total)))
	}
	rate := ""
	if secs := elapsed.Seconds(); secs > 0.2 {
		rate = humanBytes(int64(float64(done)/secs)) + "/s"
	}
	// Fixed widths keep the bar from changing length as the numbers grow.
	tail := fmt.Sprintf(" %3.0f%% %10s/%s %12s", frac*100, humanBytes(done), humanBytes(total), rate)
	barWidth := width - len(label) - len(tail) - 4 // the space, brackets, and one spare column
	if barWidth < 10 {
		line := strings.TrimRight(label+tail, " ")
		if len(line) >= width {
			line = line[:max(0, width-1)]
		}
		return line
	}
	fill := int(frac * float64(barWidth))
	bar := strings.Repeat("=", fill)
	if fill < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-fill-1)
	}
	return label + " [" + bar + "]" + tail
}

// humanBytes renders n with binary units: "512 B", "1.5 KiB", "3.0 GiB".
func humanBytes(n int64) string {
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		f /= 1024
		if f < 1024 && f > -1024 || unit == "PiB" {
			return fmt.Sprintf("%.1f %s", f, unit)
		}
	}
	panic("unreachable")
}
