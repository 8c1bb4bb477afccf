// Command benchtool is the instrument behind scripts/bench get, seed, stream, discovery and fleet: it
// starts the swarm (our tracker and aria2c seeders), runs the clients under test (torrentfs,
// aria2c, btfs, Transmission, nginx, curl) as child processes, measures them, prints tables and appends JSON lines for
// later comparison. It drives the built torrentfs binary and imports only metainfo, to
// read the torrents; it is a lab tool, not part of torrentfs.
//
// It also holds the probes that read from a mount or from torrentfs's HTTP endpoint
// (readat, paced, play, fetch): the orchestrator runs them as child processes of itself, so
// a read stuck in a FUSE mount can be killed by a timeout without wedging the orchestrator.
//
// State: the orchestrator's state (started processes, collected samples) belongs to the main
// goroutine; each started process has one waiter goroutine that owns its exec.Cmd after
// Start and publishes the exit through a closed channel. The delay lines of the fleet lab
// and of the WAN stream lab (stream --wan; netns.Delay) are goroutines of this process too,
// each owning its TUN devices.
//
// Run it only inside a network namespace with just loopback (scripts/bench does, through
// netjail): btfs has no switch to turn its DHT off.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signalContext()
	defer stop()
	var err error
	switch os.Args[1] {
	case "get":
		err = runGet(ctx, os.Args[2:])
	case "seed":
		err = runSeed(ctx, os.Args[2:])
	case "swarm":
		err = runSwarm(ctx, os.Args[2:])
	case "stream":
		err = runStream(ctx, os.Args[2:])
	case "discovery":
		err = runDiscovery(ctx, os.Args[2:])
	case "fleet":
		err = runFleet(ctx, os.Args[2:])
	case "readat":
		err = probeReadAt(os.Args[2:])
	case "paced":
		err = probePaced(os.Args[2:])
	case "play":
		err = probePlay(ctx, os.Args[2:])
	case "fetch":
		err = probeFetch(os.Args[2:])
	case "tcpsend":
		err = probeTCPSend(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchtool %s: %v\n", os.Args[1], err)
		stop()
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: benchtool get|seed|stream|swarm|discovery|fleet [flags]     (see scripts/bench)
       benchtool readat FILE OFFSET LENGTH
       benchtool paced FILE BYTES_PER_SECOND SECONDS
       benchtool play FILE SECONDS
       benchtool fetch URL
       benchtool tcpsend ADDR BYTES
FILE may be an http:// URL (torrentfs mount --http).`)
	os.Exit(2)
}

// signalContext is cancelled by SIGINT or SIGTERM, so an interrupted run still stops what it
// started and unmounts.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
