package main

import (
	"strings"
	"testing"
)

// TestEncryptionFlagUsage: every engine command refuses an unknown --encryption with a
// usage error before it touches the network.
func TestEncryptionFlagUsage(t *testing.T) {
	for _, args := range [][]string{
		{"get", "--encryption", "always", "--no-dht", "--no-lsd", "x.torrent"},
		{"seed", "--encryption", "RC4", "--no-dht", "--no-lsd", "x.torrent"},
		{"mount", "--encryption", "", "--no-dht", "--no-lsd", "x.torrent", t.TempDir()},
	} {
		t.Run(args[0], func(t *testing.T) {
			stdout, stderr, code := runCmd(t, args...)
			if code != 2 || !strings.Contains(stderr, "want prefer, require or off") {
				t.Errorf("exit %d, want 2 and a usage error\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
		})
	}
}
