// Command randread reads files of a mounted torrent and compares every byte with the
// originals. The mount tests run it as a child process: one process doing many reads is
// far faster than one dd per read, and the test process itself must never touch the mount
// it may hang with.
//
// Random mode: randread -mount M -orig O -n 1000 -seed 7 PATH... makes n reads at random
// offsets and lengths (some reaching or starting past the end) in the given files (paths
// relative to both M and O), choosing files by size.
//
// Script mode: randread -mount M -orig O -stdin PATH reads lines "OFFSET LENGTH" from
// stdin, makes each read on one open handle of PATH, and answers each with a line "ok" or
// "mismatch ...", so the test decides when the next read starts.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	mnt := flag.String("mount", "", "mount point")
	orig := flag.String("orig", "", "directory with the original files")
	n := flag.Int("n", 1000, "reads in random mode")
	seed := flag.Uint64("seed", 1, "random seed")
	maxLen := flag.Int64("max", 256<<10, "longest read in random mode")
	script := flag.Bool("stdin", false, "script mode: reads come from stdin")
	flag.Parse()
	var err error
	if *script {
		err = scripted(*mnt, *orig, flag.Args())
	} else {
		err = random(*mnt, *orig, flag.Args(), *n, *seed, *maxLen)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "randread:", err)
		os.Exit(1)
	}
}

type file struct {
	name string
	f    *os.File
	want []byte
}

func open(mnt, orig, name string) (*file, error) {
	want, err := os.ReadFile(filepath.Join(orig, name))
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(mnt, name))
	if err != nil {
		return nil, err
	}
	return &file{name: name, f: f, want: want}, nil
}

// read reads n bytes at off and compares them with the original.
func (f *file) read(off, n int64) error {
	buf := make([]byte, n)
	got, err := f.f.ReadAt(buf, off)
	if err != nil && err != io.EOF {
		return fmt.Errorf("%s: read %d bytes at %d: %w", f.name, n, off, err)
	}
	size := int64(len(f.want))
	lo, hi := min(off, size), min(off+n, size)
	want := f.want[lo:hi]
	if !bytes.Equal(buf[:got], want) {
		diff := 0
		for diff < got && diff < len(want) && buf[diff] == want[diff] {
			diff++
		}
		return fmt.Errorf("%s: %d bytes at %d: got %d bytes, want %d; first difference at byte %d", f.name, n, off, got, len(want), diff)
	}
	return nil
}

func random(mnt, orig string, names []string, n int, seed uint64, maxLen int64) error {
	var files []*file
	var total int64
	for _, name := range names {
		f, err := open(mnt, orig, name)
		if err != nil {
			return err
		}
		defer f.f.Close()
		files = append(files, f)
		total += int64(len(f.want)) + 1 // +1: empty files get picked too
	}
	if len(files) == 0 {
		return fmt.Errorf("no files")
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for i := range n {
		x := rng.Int64N(total)
		var f *file
		for _, f = range files {
			if x -= int64(len(f.want)) + 1; x < 0 {
				break
			}
		}
		size := int64(len(f.want))
		off := rng.Int64N(size + 1 + size/50) // a few start at or past the end
		ln := 1 + rng.Int64N(maxLen)
		if err := f.read(off, ln); err != nil {
			return fmt.Errorf("read %d: %w", i, err)
		}
	}
	return nil
}

func scripted(mnt, orig string, names []string) error {
	if len(names) != 1 {
		return fmt.Errorf("script mode wants one file")
	}
	f, err := open(mnt, orig, names[0])
	if err != nil {
		return err
	}
	defer f.f.Close()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var off, n int64
		if _, err := fmt.Sscan(in.Text(), &off, &n); err != nil {
			return fmt.Errorf("bad line %q: %w", in.Text(), err)
		}
		if err := f.read(off, n); err != nil {
			fmt.Println("mismatch", err)
			continue
		}
		fmt.Println("ok")
	}
	return in.Err()
}
