package picker

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The picker is pure logic: it must not reach the network, files or the clock on its own.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"math": true, "math/rand/v2": true, "slices": true, "time": true, "torrentfs/bitfield": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %s", name, path)
			}
		}
		if strings.Contains(string(src), "time.Now(") || strings.Contains(string(src), "time.After") ||
			strings.Contains(string(src), "time.NewTimer") || strings.Contains(string(src), "go func") {
			t.Errorf("%s reads the clock, sets a timer or starts a goroutine", name)
		}
	}
}
