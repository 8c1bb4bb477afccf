package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"torrentfs/metainfo"
)

func init() {
	register(&command{
		name:  "create",
		args:  "PATH",
		short: "make a .torrent of a file or directory",
		long: `Hashes PATH (a file, or a directory with everything below it) and writes a .torrent,
by default <name>.torrent in the current directory. Each -t adds a tracker tier; -t a,b
is one tier of two trackers. --v2 makes a BitTorrent v2 torrent (BEP 52), --hybrid one
that is both v1 and v2; the default is v1. Prints the info-hashes and magnet link when done.`,
		setup: setupCreate,
	})
}

// stringsFlag collects every use of a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, " ") }
func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// sizeFlag is a byte count written as 262144, 256K, 256KiB, 4M or 1G.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "I")
	shift := 0
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		}
	}
	if shift != 0 {
		s = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is not a size (like 262144, 256K or 4M)", v)
	}
	return n << shift, nil
}

func setupCreate(fl *flag.FlagSet) func(args []string) error {
	out := fl.String("o", "", "write the torrent to `FILE` (default <name>.torrent; - for stdout)")
	force := fl.Bool("f", false, "overwrite the output file if it exists")
	var trackers, webSeeds stringsFlag
	fl.Var(&trackers, "t", "tracker announce `URL`; repeat for more tiers, comma-separate for several in one tier")
	fl.Var(&webSeeds, "web-seed", "web seed `URL` (BEP 19); repeatable")
	var pieceSize sizeFlag
	fl.Var(&pieceSize, "piece-size", "piece `SIZE`, a power of two >= 16K, like 256K or 4M (default: about 1500 pieces)")
	private := fl.Bool("private", false, "mark the torrent private (peers only from its trackers)")
	comment := fl.String("comment", "", "`TEXT` stored as the torrent's comment")
	noDate := fl.Bool("no-date", false, "leave out the creation date, so the same data gives the same file")
	v2 := fl.Bool("v2", false, "make a BitTorrent v2 torrent (BEP 52), which v1-only clients cannot read")
	hybrid := fl.Bool("hybrid", false, "make a torrent that is both v1 and v2 (files padded to piece boundaries)")
	stderr := fl.Output() // run's stderr
	return func(args []string) error {
		if len(args) != 1 {
			return usagef("want exactly one PATH, got %d arguments", len(args))
		}
		if pieceSize != 0 {
			if err := metainfo.CheckCreatePieceLength(int64(pieceSize)); err != nil {
				return usagef("--piece-size: %v", err)
			}
		}
		if *v2 && *hybrid {
			return usagef("--v2 and --hybrid exclude each other (a hybrid is v2 too)")
		}
		opts := metainfo.CreateOptions{
			Version:     metainfo.V1,
			PieceLength: int64(pieceSize),
			Private:     *private,
			Comment:     *comment,
			WebSeeds:    webSeeds,
			NoDate:      *noDate,
		}
		switch {
		case *v2:
			opts.Version = metainfo.V2
		case *hybrid:
			opts.Version = metainfo.Hybrid
		}
		for _, t := range trackers {
			opts.Announce = append(opts.Announce, strings.Split(t, ","))
		}
		return runCreate(args[0], *out, *force, opts, cmdStdout, stderr)
	}
}

func runCreate(path, out string, force bool, opts metainfo.CreateOptions, stdout, stderr io.Writer) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Base(abs) + ".torrent"
	}
	// Refuse before hashing, which may take minutes; the write below checks again.
	if out != "-" && !force {
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("%s exists; use -f to overwrite it", out)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var bar *progress
	opts.Progress = func(n, total int64) {
		if bar == nil {
			bar = newProgress(stderr, "hashing", total)
		}
		bar.Set(n)
	}
	m, data, err := metainfo.Create(ctx, path, opts)
	if bar != nil {
		bar.Done()
	}
	if err != nil {
		return err
	}
	if out == "-" {
		if _, err := stdout.Write(data); err != nil {
			return fmt.Errorf("write torrent: %w", err)
		}
		stdout = stderr // keep the torrent alone on stdout
	} else if err := writeNew(out, data, force); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
	if m.Info.Version.HasV1() {
		fmt.Fprintf(tw, "info-hash:\t%s\n", m.InfoHash.HexString())
	}
	if m.Info.Version.HasV2() {
		fmt.Fprintf(tw, "info-hash v2:\t%s\n", m.InfoHashV2.HexString())
	}
	fmt.Fprintf(tw, "magnet:\t%s\n", m.Magnet())
	if out != "-" {
		fmt.Fprintf(tw, "wrote:\t%s (%d pieces of %s, %s)\n", out, m.Info.NumPieces(),
			humanBytes(m.Info.PieceLength), humanBytes(m.Info.TotalLength))
	}
	return tw.Flush()
}

// writeNew writes data to path, failing if it exists unless force. The file appears whole
// or not at all: it is written beside the target and then linked or renamed into place.
func writeNew(path string, data []byte, force bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write torrent: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write torrent: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write torrent: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write torrent: %w", err)
	}
	if force {
		err = os.Rename(tmp.Name(), path)
	} else {
		// Link fails if path exists, where a rename would silently replace it.
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; use -f to overwrite it", path)
		}
	}
	if err != nil {
		return fmt.Errorf("write torrent: %w", err)
	}
	return nil
}
