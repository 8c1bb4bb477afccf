package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemporary(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state")
	for _, want := range []string{"first", "second, longer than the first"} {
		if err := Write(p, []byte(want)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	if err := Write(filepath.Join(dir, "missing", "state"), []byte("x")); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	names, _ := os.ReadDir(dir)
	if len(names) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(names))
	}
}
