package httpserve

import (
	"strings"
	"testing"
	"time"

	"torrentfs/internal/testutil"
)

// TestHTTPStatusPageInBrowser loads the status page in headless Chromium, lets its script
// poll /api/torrents, and checks the DOM it built: the torrent's name and an SVG piece map
// with the present pieces drawn.
func TestHTTPStatusPageInBrowser(t *testing.T) {
	testutil.Need(t, "chromium")
	f := newFake("Big Buck <Bunny>", 0xab, ffile{[]string{"movie.mkv"}, 1 << 20})
	f.Provide(0, 1, 2, 3)
	_, hs := start(t, Options{}, f)
	p := testutil.Start(t, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", hs.URL+"/")
	if err := p.Wait(t, 90*time.Second); err != nil {
		t.Fatalf("chromium: %v\n%s", err, p.Stderr())
	}
	dom := p.Stdout()
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
}
