package main

import (
	"runtime"
	"syscall"
	"time"
)

// A peer moving a few MiB/s sends a message every few milliseconds, and each one wakes a
// goroutine or two (a connection's reader, the torrent's loop, a writer, a disk worker).
// With more than one P, Go's scheduler answers each wake-up by waking an idle thread too,
// which finds nothing to do and sleeps again: futex, epoll and nanosleep calls were two
// thirds of the system calls per 16 KiB block of a seeder or downloader at 2 MiB/s, and
// GOMAXPROCS=1 took a quarter to a third off their CPU per GiB, with the same
// throughput; a download from four loopback seeders at 100-200 MiB/s, about half a core
// of work, cost 10-25% less CPU per GiB on one P too. A process that needs more than a
// core (a download hashing at several hundred MiB/s, the check of a torrent's data at
// start) wants them all. So GOMAXPROCS follows the process's own CPU use: it starts at
// one P, goes to the runtime's default (all cores, or the container's quota) as soon as a
// quarter second used procsHigh of a core, and back to one P once it has used less than
// procsLow for procsCalm samples in a row. Only the commands that run a swarm or a DHT
// node do this (procsCommands); a GOMAXPROCS environment variable turns it off.

const (
	procsEvery = 250 * time.Millisecond
	procsCalm  = 20  // samples below procsLow before going down to one P: five seconds
	procsLow   = 0.5 // cores
	procsHigh  = 0.8 // cores: up to the default at once
)

// procsCommands are the commands whose GOMAXPROCS follows their CPU use: the ones that
// talk to peers for as long as they run. `create` and the rest hash or print at full
// speed and exit.
var procsCommands = map[string]bool{"get": true, "seed": true, "mount": true, "serve": true, "dht": true}

// procsPolicy decides GOMAXPROCS from the process's CPU use, one sample at a time. It is
// pure: the caller measures and applies.
type procsPolicy struct {
	max  int // the runtime's default
	cur  int
	calm int // samples in a row below procsLow
}

// next takes the cores used over the last interval and returns the GOMAXPROCS to run with.
func (p *procsPolicy) next(cores float64) int {
	switch {
	case cores >= procsHigh:
		p.calm = 0
		p.cur = p.max
	case cores < procsLow:
		if p.calm++; p.calm >= procsCalm {
			p.cur = 1
		}
	default:
		p.calm = 0
	}
	return p.cur
}

// adaptProcs runs the policy for the life of the process (its goroutine ends with it)
// when cmd is one of procsCommands, unless GOMAXPROCS is set or there is one core anyway.
// It is started from main, never from run, which tests call in-process.
func adaptProcs(cmd string, getenv func(string) string) {
	if !procsCommands[cmd] || getenv("GOMAXPROCS") != "" {
		return
	}
	n := runtime.GOMAXPROCS(0)
	if n <= 1 {
		return
	}
	p := procsPolicy{max: n, cur: 1}
	runtime.GOMAXPROCS(1)
	go func() {
		t := time.NewTicker(procsEvery)
		defer t.Stop()
		last, lastCPU := time.Now(), processCPU()
		for now := range t.C {
			cpu := processCPU()
			cores := (cpu - lastCPU).Seconds() / now.Sub(last).Seconds()
			last, lastCPU = now, cpu
			prev := p.cur
			switch n := p.next(cores); {
			case n == prev:
			case n == p.max:
				runtime.SetDefaultGOMAXPROCS() // and follow the container's quota again
				p.max = max(runtime.GOMAXPROCS(0), 1)
				p.cur = p.max
			default:
				runtime.GOMAXPROCS(n)
			}
		}
	}()
}

// processCPU is the user and system time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
