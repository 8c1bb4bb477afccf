package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one started child process. Its waiter goroutine owns cmd after Start and closes
// done when the process has been reaped; err and the rusage are safe to read after done.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logf *os.File

	logPath string
}

// start runs argv with stdout and stderr going to logPath (or nowhere when empty).
func start(name, logPath string, argv ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), logPath: logPath}
	cmd := exec.Command(argv[0], argv[1:]...)
	if logPath != "" {
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(logPath)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		p.logf = f
		cmd.Stdout, cmd.Stderr = f, f
	}
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		if p.logf != nil {
			p.logf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		if p.logf != nil {
			p.logf.Close()
		}
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit on its own, or for ctx.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends SIGTERM, gives the process grace to exit, then kills it; it returns once the
// process has been reaped.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// usage is the process's user+system CPU seconds and peak RSS in bytes, known after exit.
func (p *proc) usage() (cpu float64, maxRSS int64) {
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0, 0
	}
	cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return cpu, ru.Maxrss << 10 // Linux reports KiB
}

// procCPU is a live process's user+system CPU seconds so far, from /proc/PID/stat (clock
// ticks of 1/100 s, the value Linux uses on every architecture Go runs on); 0 if it is gone.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, field 2, may hold spaces; the fields after its ')' are fixed.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// After the name: state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime(14) stime(15).
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// hwm is the process's peak resident set so far (VmHWM), in bytes; 0 once it has exited.
func hwm(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// runProbe runs benchtool itself with args as a child, bounded by timeout, and returns its
// stdout. A probe stuck in a FUSE read is killed (FUSE requests are killable).
func runProbe(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return runCmd(ctx, timeout, append([]string{self}, args...)...)
}

var errTimeout = errors.New("timed out")

// runCmd runs argv with a timeout and returns its stdout; stderr is folded into the error.
func runCmd(ctx context.Context, timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return string(out), fmt.Errorf("%s: %w after %v", argv[0], errTimeout, timeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// poll calls cond every step until it is true, ctx ends or timeout passes.
func poll(ctx context.Context, timeout, step time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not true after %v", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
	}
}
