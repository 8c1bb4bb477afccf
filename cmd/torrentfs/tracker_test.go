package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTrackerCLIHelperProcess is the child of TestTrackerCLI: the test binary re-run as
// `torrentfs` with the arguments in TORRENTFS_TRACKER_HELPER_ARGS.
func TestTrackerCLIHelperProcess(t *testing.T) {
	raw := os.Getenv("TORRENTFS_TRACKER_HELPER_ARGS")
	if raw == "" {
		t.Skip("helper process for TestTrackerCLI")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		t.Fatal(err)
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

var trackerURLRE = regexp.MustCompile(`http="?(http://[^"\s]+)"?.* udp="?(udp://[^"\s]+)"?`)

func TestTrackerCLI(t *testing.T) {
	allowed := strings.Repeat("ab", 20)
	allowFile := filepath.Join(t.TempDir(), "allow")
	if err := os.WriteFile(allowFile, []byte("# private swarm\n\n"+allowed+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			args, _ := json.Marshal([]string{"tracker", "--listen", "127.0.0.1:0", "--interval", "90s", "--allow", allowFile})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTrackerCLIHelperProcess$")
			cmd.Env = append(os.Environ(), "TORRENTFS_TRACKER_HELPER_ARGS="+string(args))
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := false
			t.Cleanup(func() {
				if !waited {
					cmd.Process.Kill()
					cmd.Wait()
				}
			})

			// The start line names both announce URLs.
			lines := make(chan string, 100)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			var httpURL, udpURL string
			var seen []string
			for httpURL == "" {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("tracker exited before its start line; it printed %q", seen)
					}
					seen = append(seen, l)
					if m := trackerURLRE.FindStringSubmatch(l); m != nil {
						httpURL, udpURL = m[1], m[2]
					}
				case <-ctx.Done():
					t.Fatalf("no start line; printed %q", seen)
				}
			}
			hu, err := url.Parse(httpURL)
			if err != nil || hu.Path != "/announce" {
				t.Fatalf("HTTP URL %q", httpURL)
			}
			uu, err := url.Parse(udpURL)
			if err != nil || uu.Host != hu.Host {
				t.Fatalf("UDP URL %q, want the HTTP URL's host:port %s", udpURL, hu.Host)
			}

			announce := func(ihHex string) string {
				ih, _ := hex.DecodeString(ihHex)
				q := url.Values{"info_hash": {string(ih)}, "peer_id": {"-TT0001-000000000001"}, "port": {"6881"}, "left": {"0"}}
				resp, err := http.Get(httpURL + "?" + q.Encode())
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return string(b)
			}
			if got := announce(allowed); !strings.Contains(got, "8:intervali90e") {
				t.Errorf("announce of the allowed torrent: %q", got)
			}
			if got := announce(strings.Repeat("cd", 20)); !strings.Contains(got, "failure reason") {
				t.Errorf("announce of a torrent not on the allow list: %q", got)
			}

			// UDP answers a connect on the same port.
			uc, err := net.Dial("udp", uu.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			pkt := binary.BigEndian.AppendUint64(nil, 0x41727101980)
			pkt = binary.BigEndian.AppendUint32(pkt, 0)
			pkt = binary.BigEndian.AppendUint32(pkt, 777)
			uc.Write(pkt)
			uc.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 64)
			n, err := uc.Read(buf)
			if err != nil || n != 16 || binary.BigEndian.Uint32(buf[4:]) != 777 {
				t.Fatalf("UDP connect reply %x, err %v", buf[:n], err)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for range lines {
			}
			err = cmd.Wait()
			waited = true
			if err != nil {
				t.Fatalf("after %v: %v, want exit status 0", sig, err)
			}
		})
	}
}

func TestTrackerExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not-a-hash\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"extra argument", []string{"tracker", "x"}, exitUsage, "unexpected argument"},
		{"zero interval", []string{"tracker", "--interval", "0s"}, exitUsage, "--interval"},
		{"missing allow file", []string{"tracker", "--allow", filepath.Join(dir, "nope")}, exitRuntime, "allow list"},
		{"bad allow file", []string{"tracker", "--allow", bad}, exitRuntime, "line 1"},
		{"bad listen address", []string{"tracker", "--listen", "nonsense"}, exitRuntime, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb strings.Builder
			code := run(tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errb.String(), tt.code, tt.want)
			}
		})
	}
}

func TestTrackerAllowList(t *testing.T) {
	h1, h2 := strings.Repeat("01", 20), strings.Repeat("AF", 20)
	tests := []struct {
		name, in string
		want     []string // hex, lower case
		err      bool
	}{
		{"empty", "", nil, false},
		{"comments and blanks", "# a\n\n  " + h1 + "  \n#" + h2 + "\n", []string{h1}, false},
		{"upper case", h2 + "\r\n", []string{strings.ToLower(h2)}, false},
		{"two", h1 + "\n" + h2, []string{h1, strings.ToLower(h2)}, false},
		{"short", h1[:38], nil, true},
		{"not hex", strings.Repeat("zz", 20), nil, true},
		{"base32 is not accepted", strings.Repeat("A", 32), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := parseTrackerAllowList(strings.NewReader(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("err = %v, want error %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if len(set) != len(tt.want) {
				t.Fatalf("%d hashes, want %d", len(set), len(tt.want))
			}
			for _, w := range tt.want {
				b, _ := hex.DecodeString(w)
				if !set[[20]byte(b)] {
					t.Errorf("%s missing", w)
				}
			}
		})
	}
}

func FuzzTrackerAllowList(f *testing.F) {
	f.Add("# c\n" + strings.Repeat("ab", 20) + "\n")
	f.Add("zz\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		set, err := parseTrackerAllowList(strings.NewReader(in))
		if err == nil && len(set) > strings.Count(in, "\n")+1 {
			t.Fatalf("%d hashes from %d lines", len(set), strings.Count(in, "\n")+1)
		}
	})
}
