package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"torrentfs/internal/qbit"
)

// startQBittorrent starts a qbittorrent-nox seeder with a fresh profile under dir (see
// qbit.WriteProfile: on ip:port, loopback only, a global upload limit of limit bytes/s
// that covers loopback peers). It adds torrent with its data under saveDir and returns
// once the WebUI took it; the tracker says when it seeds.
func startQBittorrent(ctx context.Context, name, logPath, dir, ip string, port int, limit int64, torrent, saveDir string) (*proc, error) {
	webPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := qbit.WriteProfile(dir, ip, port, webPort, limit); err != nil {
		return nil, err
	}
	p, err := start(name, logPath, "qbittorrent-nox", "--profile="+dir)
	if err != nil {
		return nil, err
	}
	api := "http://127.0.0.1:" + strconv.Itoa(webPort)
	err = poll(ctx, 30*time.Second, 100*time.Millisecond, func() bool { return p.exited() || qbit.Up(api) })
	if err == nil && p.exited() {
		err = fmt.Errorf("exited: %v", p.err)
	}
	if err == nil {
		err = qbit.Add(api, torrent, saveDir)
	}
	if err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("qbittorrent-nox %s: %w (log %s)", name, err, logPath)
	}
	return p, nil
}

// freePort asks the kernel for a free TCP port on loopback.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// parseRate reads a rate in aria2c's notation ("2M", "512K", "1000"): bytes per second,
// K and M being 1024 and 1024*1024.
func parseRate(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult, s = 1<<10, s[:len(s)-1]
	case "M":
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("rate %q: want a number with an optional K or M", s)
	}
	return n * mult, nil
}
