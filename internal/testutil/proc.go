package testutil

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process a test started. Its stdout and stderr are kept, each on its own
// and both interleaved, for the test to read while it runs and for failure messages.
type Proc struct {
	Name string // base name of the program
	Cmd  *exec.Cmd

	stdout, stderr, output Buffer
	done                   chan struct{}
	err                    error // how it ended; set before done is closed
}

// Start runs a program in a process group of its own; t.Cleanup kills the group and waits.
// If the test failed, the cleanup logs what the program printed.
func Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: filepath.Base(name), Cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.Cmd.Stdout = io.MultiWriter(&p.stdout, &p.output)
	p.Cmd.Stderr = io.MultiWriter(&p.stderr, &p.output)
	// Its own group, so Stop also ends what it started (a shell's children, helpers).
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s %s:\n%s", p.Name, strings.Join(args, " "), p.Output())
		}
	})
	return p
}

// Stop kills the process group and waits for the program to end.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Wait waits for the program to exit and returns how it ended; if it still runs after d,
// it fails the test, showing what the program printed.
func (p *Proc) Wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("%s still running after %v; it printed:\n%s", p.Name, d, p.Output())
		return nil
	}
}

// Done is closed when the program has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited tells whether the program has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the program ended (as from exec.Cmd.Wait); nil while it runs.
func (p *Proc) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Stdout is what the program wrote to stdout so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr is what the program wrote to stderr so far.
func (p *Proc) Stderr() string { return p.stderr.String() }

// Output is stdout and stderr as the program interleaved them, of each line it redrew with
// carriage returns (a status bar) only the final state.
func (p *Proc) Output() string { return lastOfEachLine(p.output.String()) }

// Buffer collects a child's output while the test reads it. A chatty program keeps only
// its last 2 to 4 MiB.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *Buffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 4<<20 {
		w.b.Next(w.b.Len() - 2<<20)
	}
	return w.b.Write(p)
}

func (w *Buffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// lastOfEachLine keeps, of each line that a program redrew with carriage returns, only the
// final state, so status bars do not flood a failure message.
func lastOfEachLine(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if k := strings.LastIndex(strings.TrimRight(l, "\r "), "\r"); k >= 0 {
			lines[i] = l[k+1:]
		}
	}
	return strings.Join(lines, "\n")
}
