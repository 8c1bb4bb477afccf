package httpserve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// TestHTTPStatusPageInBrowser loads the status page in headless Chromium, lets its script
// poll /api/torrents, and checks the DOM it built: the torrent's name and an SVG piece map
// with the present pieces drawn. The add form and the remove buttons show only when the
// server takes writes.
func TestHTTPStatusPageInBrowser(t *testing.T) {
	testutil.Need(t, "chromium")
	f := newFake("Big Buck <Bunny>", 0xab, ffile{[]string{"movie.mkv"}, 1 << 20})
	f.Provide(0, 1, 2, 3)
	dom := pageDOM(t, Options{}, f)
	for _, want := range []string{
		`<h2 class="name">Big Buck &lt;Bunny&gt;</h2>`,
		f.InfoHash().HexString(),
		`<svg class="pieces"`,
		`fill="#2a8f3c"`, // the present pieces' run
		"Big Buck &lt;Bunny&gt;/movie.mkv",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %s; DOM:\n%s", want, dom)
		}
	}
	if !strings.Contains(dom, `<form id="add" hidden="">`) || strings.Contains(dom, `class="rm"`) {
		t.Errorf("a read-only server's page offers writes; DOM:\n%s", dom)
	}
	dom = pageDOM(t, Options{Control: newFakeControl(), Token: "x"}, f)
	if !strings.Contains(dom, `<form id="add">`) || !strings.Contains(dom, `<button class="rm">remove</button>`) {
		t.Errorf("a writable server's page offers no add form or remove button; DOM:\n%s", dom)
	}
}

// pageDOM loads the status page of a server of ts in headless Chromium and returns the
// DOM its script built.
func pageDOM(t *testing.T, opts Options, ts ...Torrent) string {
	t.Helper()
	_, hs := start(t, opts, ts...)
	return browse(t, hs.URL+"/")
}

// browse loads url in headless Chromium, lets its scripts run for 3 s of virtual time, and
// returns the DOM.
func browse(t *testing.T, url string) string {
	t.Helper()
	p := testutil.Start(t, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", url)
	if err := p.Wait(t, 90*time.Second); err != nil {
		t.Fatalf("chromium: %v\n%s", err, p.Stderr())
	}
	return p.Stdout()
}

// TestHTTPStatusPageWrites drives the page's add form and remove button in Chromium (a
// script added to the page types and clicks as a user would): the browser's own requests
// (a multipart form, same-origin, with the typed token) add and remove.
func TestHTTPStatusPageWrites(t *testing.T) {
	testutil.Need(t, "chromium")
	f := newFake("Film", 0xab, ffile{[]string{"movie.mkv"}, 1 << 16})
	c := newFakeControl()
	c.names[f.hash] = "Film"
	s, _ := start(t, Options{Control: c, Token: "tok"}, f)
	user := `<script>
window.confirm = () => true;
setTimeout(() => {
  document.getElementById("token").value = "tok";
  document.getElementById("token").dispatchEvent(new Event("input"));
  document.querySelector("input[name=magnet]").value = "magnet:?xt=urn:btih:` + strings.Repeat("4", 40) + `&dn=four";
  document.getElementById("add").requestSubmit();
  setTimeout(() => {
    document.getElementById("delcache").checked = true;
    document.querySelector("button.rm").click();
  }, 500);
}, 300);
</script></body>`
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "GET" && r.URL.Path == "/" {
			b, _ := static.ReadFile("static/index.html")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(strings.Replace(string(b), "</body>", user, 1)))
			return
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(page.Close)
	dom := browse(t, page.URL+"/")
	added, removed := c.record()
	if len(added) != 1 || len(removed) != 1 || removed[0] != f.hash.HexString()+" +cache" {
		t.Errorf("the page added %v and removed %v", added, removed)
	}
	if !strings.Contains(dom, ">added four</span>") {
		t.Errorf("the page does not say it added; DOM:\n%s", dom)
	}
}
