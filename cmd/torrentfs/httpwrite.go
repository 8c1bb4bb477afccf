package main

// Adding and removing torrents over HTTP (--http-token): the flags, and the library shown
// to the HTTP server as its Control.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"torrentfs/httpserve"
	"torrentfs/library"
	"torrentfs/metainfo"
)

// tokenFlags are --http-token and --http-token-file.
type tokenFlags struct {
	token, file string
}

func (tf *tokenFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&tf.token, "http-token", "", "let HTTP requests carrying `TOKEN` (Authorization: Bearer TOKEN) add and remove torrents: POST /api/torrents, DELETE /api/torrents/NAME; without a token the HTTP server only reads")
	fset.StringVar(&tf.file, "http-token-file", "", "like --http-token, with the token read from the first line of `FILE` (so it does not show in ps)")
}

func (tf *tokenFlags) set() bool { return tf.token != "" || tf.file != "" }

// get is the token, "" when none was given.
func (tf *tokenFlags) get() (string, error) {
	if tf.token != "" && tf.file != "" {
		return "", usagef("give --http-token or --http-token-file, not both")
	}
	if tf.file == "" {
		return tf.token, nil
	}
	f, err := os.Open(tf.file)
	if err != nil {
		return "", fmt.Errorf("--http-token-file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("--http-token-file %s: %w", tf.file, err)
	}
	tok := strings.TrimSpace(sc.Text())
	if tok == "" {
		return "", fmt.Errorf("--http-token-file %s: the first line is empty", tf.file)
	}
	return tok, nil
}

// httpControl lets the HTTP server add and remove the library's torrents. Its lib is set
// before the server starts answering.
type httpControl struct {
	lib       *library.Library
	cacheSize int64
}

var _ httpserve.Control = (*httpControl)(nil)

func (c *httpControl) Add(ctx context.Context, a httpserve.AddRequest) (string, metainfo.Hash, error) {
	spec := library.Spec{Torrent: a.Torrent, Magnet: a.Magnet, Origin: a.Origin}
	if err := checkSpec(spec, c.cacheSize); err != nil {
		return "", metainfo.Hash{}, kindError{httpserve.ErrInvalid, err}
	}
	e, err := c.lib.Add(spec)
	if errors.Is(err, library.ErrExists) {
		return "", metainfo.Hash{}, kindError{httpserve.ErrExists, err}
	}
	if err != nil {
		return "", metainfo.Hash{}, err
	}
	return e.Name(), e.Hash, nil
}

func (c *httpControl) Remove(key string, deleteCache bool) error {
	_, err := c.lib.Remove(key, deleteCache)
	switch {
	case errors.Is(err, library.ErrNotFound):
		return kindError{httpserve.ErrNotFound, err}
	case errors.Is(err, library.ErrAmbiguous):
		return kindError{httpserve.ErrInvalid, err}
	}
	return err
}

// kindError is err, also matching kind with errors.Is; its message is err's alone.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

// checkSpec refuses what the library would take but could not run here: a torrent or
// link that does not parse, one whose pieces cannot be verified, pieces too large for
// --cache-size.
func checkSpec(spec library.Spec, cacheSize int64) error {
	if spec.Torrent == nil {
		_, err := metainfo.ParseMagnet(spec.Magnet)
		return err
	}
	mi, err := metainfo.Parse(spec.Torrent)
	if err != nil {
		return err
	}
	if err := library.Transferable(mi); err != nil {
		return err
	}
	_, err = windowFor(cacheSize, &mi.Info)
	return err
}
