package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"torrentfs/cache"
	"torrentfs/swarm"
)

func init() {
	register(&command{
		name:  "get",
		args:  "FILE.torrent|MAGNET",
		short: "download a torrent to a directory",
		long: `Downloads every file of the torrent into --out (DIR/<name> for a single file,
DIR/<name>/<path...> for several), verifying each piece, and uploads to peers meanwhile.
Data already in --out is verified first, so an interrupted download resumes. With --seed
it keeps uploading after the download completes, until Ctrl-C. A magnet link's metadata
is fetched from its peers (x.pe, --peer) and trackers (tr, --tracker) first.`,
		setup: setupGet,
	})
}

func setupGet(fs *flag.FlagSet) func([]string) error {
	var ef engineFlags
	ef.register(fs)
	out := fs.String("out", ".", "directory to download into")
	seed := fs.Bool("seed", false, "keep seeding after the download completes")
	return func(args []string) error {
		if len(args) != 1 {
			return usagef("want one .torrent file or magnet link")
		}
		log := logrus.WithField("cmd", "get")
		ctx, stop := signalContext()
		defer stop()
		c, err := ef.newClient(log)
		if err != nil {
			return err
		}
		defer c.Close()
		mi, err := loadTorrent(ctx, args[0], c.Client, &ef)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
		store, have, err := openStorage(ctx, *out, mi, cache.Options{Log: log})
		if err != nil {
			return err
		}
		defer store.Close()
		t, err := ef.addTorrent(c, mi, store, have, func(cfg *swarm.TorrentConfig) {
			// Every piece must stay: a full disk stops the download, to resume later.
			cfg.StopOnDiskFull = true
		})
		if err != nil {
			return err
		}
		log.Infof("downloading %s (%s) to %s", mi.Info.Name, hashText(mi.InfoHash, mi.InfoHashV2), dataPath(*out, mi.Info.Name))
		sctx, stopStatus := context.WithCancel(ctx)
		go statusLine(sctx, os.Stderr, t)
		if err := waitComplete(ctx, t); err != nil {
			stopStatus()
			s := t.Stats()
			c.Close()
			logSession(log, s)
			if errors.Is(err, context.Canceled) {
				return fmt.Errorf("interrupted at %s of %s; run again to resume", humanBytes(s.BytesDone), humanBytes(s.Total))
			}
			return err
		}
		stopStatus()
		s := t.Stats()
		logSession(log, s)
		if s.Err != nil {
			return s.Err
		}
		fmt.Fprintf(cmdStdout, "downloaded %s to %s\n", humanBytes(s.Total), dataPath(*out, mi.Info.Name))
		if *seed {
			log.Info("seeding until Ctrl-C")
			go statusLine(ctx, os.Stderr, t)
			<-ctx.Done()
		}
		return c.Close()
	}
}

func dataPath(dir, name string) string { return filepath.Join(dir, name) }

// waitComplete waits for the download to finish, for ctx, or for a storage failure (a full
// disk) that stops the download.
func waitComplete(ctx context.Context, t *swarm.Torrent) error {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-t.Complete():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
			if err := t.Stats().Err; err != nil {
				return err
			}
		}
	}
}

// logSession logs what this run moved, with the byte counts as fields for scripts.
func logSession(log *logrus.Entry, s swarm.Stats) {
	web := ""
	if s.FromWebSeeds > 0 {
		web = fmt.Sprintf(" (%s of it from web seeds)", humanBytes(s.FromWebSeeds))
	}
	log.WithFields(logrus.Fields{"downloaded": s.Downloaded, "uploaded": s.Uploaded, "web_seeds": s.FromWebSeeds}).
		Infof("this session downloaded %s%s and uploaded %s", humanBytes(s.Downloaded), web, humanBytes(s.Uploaded))
}
