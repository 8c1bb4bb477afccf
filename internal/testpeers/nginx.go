package testpeers

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// Nginx is Debian's nginx serving a directory on a loopback address, for web seed tests
// (BEP 19): a real server's range answers (206, Content-Range), keep-alive and errors.
type Nginx struct {
	Proc      *testutil.Proc
	URL       string // http://IP:PORT/, the served directory's root
	AccessLog string
}

// NginxOpts configures StartNginx.
type NginxOpts struct {
	IP   string // a loopback address (default 127.0.0.1)
	Port int    // default a free one
	// Locations are extra server-level directives, e.g. `location /gone/ { return 404; }`.
	Locations string
	// RateLimit, when set, is nginx's limit_rate for every response (e.g. "512k").
	RateLimit string
}

// StartNginx serves root with a minimal configuration of its own (prefix, pid file, logs
// and temp paths in a temp directory), in the foreground as one process, killed when the
// test ends.
func StartNginx(t testing.TB, root string, o NginxOpts) *Nginx {
	t.Helper()
	testutil.Need(t, "nginx")
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if ip := net.ParseIP(o.IP); ip == nil || !ip.IsLoopback() {
		t.Fatalf("nginx on %q: tests serve on loopback only", o.IP)
	}
	if o.Port == 0 {
		o.Port = FreePort(t, o.IP)
	}
	dir := t.TempDir()
	addr := net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
	access := filepath.Join(dir, "access.log")
	limit := ""
	if o.RateLimit != "" {
		limit = "limit_rate " + o.RateLimit + ";"
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[2]s;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	default_type application/octet-stream;
	sendfile on;
	keepalive_requests 10000;
	server {
		listen %[3]s;
		root %[4]s;
		%[5]s
		%[6]s
	}
}
`, dir, access, addr, root, limit, o.Locations)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// -e: the early error log too, which otherwise goes to /var/log/nginx.
	p := testutil.Start(t, "nginx", "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log"))
	testutil.WaitFor(t, 10*time.Second, "nginx to listen on "+addr, func() bool {
		if p.Exited() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", p.Err(), p.Output(), errLog)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return &Nginx{Proc: p, URL: "http://" + addr + "/", AccessLog: access}
}

// Log is nginx's access log so far.
func (n *Nginx) Log() string {
	b, _ := os.ReadFile(n.AccessLog)
	return string(b)
}
