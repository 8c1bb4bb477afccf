// Package layering holds the test that keeps imports running one way:
// cmd -> fs -> reader; cmd -> httpserve -> reader; cmd -> library -> swarm; swarm -> picker, cache, tracker; everything may use metainfo and
// bitfield; only cmd knows everything.
package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "torrentfs/"

// forbidden lists, per package, the module packages it must not import, directly or not.
var forbidden = map[string][]string{
	"bitfield":            {"metainfo", "picker", "cache", "tracker", "swarm", "reader", "fs", "cmd"},
	"metainfo":            {"picker", "cache", "tracker", "swarm", "reader", "fs", "cmd"},
	"picker":              {"metainfo", "cache", "tracker", "swarm", "reader", "fs", "cmd"},
	"cache":               {"picker", "tracker", "swarm", "reader", "fs", "cmd"},
	"tracker":             {"picker", "cache", "swarm", "reader", "fs", "cmd"},
	"swarm/wire":          {"picker", "cache", "tracker", "swarm", "reader", "fs", "cmd"},
	"swarm/mse":           {"metainfo", "bitfield", "picker", "cache", "tracker", "swarm", "reader", "fs", "cmd"},
	"swarm":               {"reader", "fs", "cmd"},
	"reader":              {"swarm", "picker", "cache", "tracker", "fs", "cmd"},
	"fs":                  {"swarm", "picker", "cache", "tracker", "library", "cmd"},
	"httpserve":           {"swarm", "picker", "cache", "tracker", "fs", "dht", "lsd", "portmap", "utp", "library", "cmd"},
	"lsd":                 {"picker", "cache", "tracker", "swarm", "reader", "fs", "cmd"},
	"dht":                 {"picker", "cache", "tracker", "swarm", "reader", "fs", "cmd"},
	"portmap":             {"bitfield", "metainfo", "picker", "cache", "tracker", "swarm", "reader", "fs", "dht", "lsd", "cmd"},
	"utp":                 {"bitfield", "metainfo", "picker", "cache", "tracker", "swarm", "reader", "fs", "dht", "lsd", "portmap", "cmd"},
	"internal/udpmux":     {"bitfield", "metainfo", "picker", "cache", "tracker", "swarm", "reader", "fs", "dht", "lsd", "portmap", "utp", "cmd"},
	"internal/atomicfile": {"bitfield", "metainfo", "picker", "cache", "tracker", "swarm", "reader", "fs", "dht", "lsd", "portmap", "utp", "cmd"},
	"library":             {"reader", "fs", "httpserve", "cmd"},
	"cmd/torrentfs":       {},
}

// pureStd is what the picker, pure logic, may use from the standard library: no I/O, no
// network, no clocks of its own.
var pureStd = map[string]bool{"math": true, "math/rand/v2": true, "slices": true, "time": true, "sort": true, "math/bits": true}

func goList(t *testing.T, format string, pkgs ...string) []string {
	t.Helper()
	args := append([]string{"list", "-f", format}, pkgs...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func TestImportDirection(t *testing.T) {
	for pkg, bad := range forbidden {
		deps := goList(t, `{{join .Deps " "}}`, mod+pkg)
		for _, d := range deps {
			if !strings.HasPrefix(d, mod) {
				continue
			}
			for _, b := range bad {
				if d == mod+b || strings.HasPrefix(d, mod+b+"/") {
					t.Errorf("%s imports %s (directly or through another package)", pkg, d)
				}
			}
		}
	}
}

func TestPickerIsPureLogic(t *testing.T) {
	for _, imp := range goList(t, `{{join .Imports " "}}`, mod+"picker") {
		if !pureStd[imp] && imp != mod+"bitfield" {
			t.Errorf("picker imports %s; it is pure logic (no I/O, network or clocks)", imp)
		}
	}
}

func TestOnlyBencodeFromAnacrolixTorrent(t *testing.T) {
	for _, line := range goList(t, `{{.ImportPath}}:{{join .Imports ","}}`, "./...") {
		pkg, imps, _ := strings.Cut(line, ":")
		for _, imp := range strings.Split(imps, ",") {
			if strings.HasPrefix(imp, "github.com/anacrolix/torrent") && imp != "github.com/anacrolix/torrent/bencode" {
				t.Errorf("%s imports %s: only the bencode package of anacrolix/torrent may be used", pkg, imp)
			}
		}
	}
}
