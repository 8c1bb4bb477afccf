package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"torrentfs/cache"
)

func init() {
	register(&command{
		name:  "seed",
		args:  "FILE.torrent",
		short: "serve complete data to a swarm",
		long: `Verifies the torrent's data under --data (DIR/<name> for a single file,
DIR/<name>/<path...> for several: the layout every client uses), then uploads it to peers
and announces to the trackers until Ctrl-C. The data is only read, never changed, so it
may live on read-only media. It takes no magnet link: a seeder has the data, so it should
have the .torrent too ("torrentfs create" makes one).`,
		setup: setupSeed,
	})
}

func setupSeed(fs *flag.FlagSet) func([]string) error {
	var ef engineFlags
	ef.register(fs)
	data := fs.String("data", ".", "directory holding the torrent's data")
	return func(args []string) error {
		if len(args) != 1 {
			return usagef("want one .torrent file")
		}
		mi, err := loadTorrent(context.Background(), args[0], nil, &ef)
		if err != nil {
			return err
		}
		log := logrus.WithField("cmd", "seed")
		store, err := cache.Open(*data, &mi.Info, cache.Options{ReadOnly: true, Log: log})
		if err != nil {
			return err
		}
		defer store.Close()
		ctx, stop := signalContext()
		defer stop()
		if err := checkStorage(ctx, store, &mi.Info, os.Stderr); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("verify %s: %w", *data, err)
		}
		have := store.Have().Count()
		switch {
		case have == 0 && mi.Info.NumPieces() > 0:
			return fmt.Errorf("no data of %q found under %s (expected %s)", mi.Info.Name, *data, dataPath(*data, mi.Info.Name))
		case have < mi.Info.NumPieces():
			log.Warnf("only %d of %d pieces are present and valid; serving those", have, mi.Info.NumPieces())
		}
		tcfg, err := ef.torrentConfig(store)
		if err != nil {
			return err
		}
		c, err := ef.newClient(log)
		if err != nil {
			return err
		}
		defer c.Close()
		t, err := c.AddTorrent(mi, tcfg)
		if err != nil {
			return err
		}
		log.Infof("seeding %s (%s) on %s", mi.Info.Name, mi.InfoHash, c.Addr())
		fmt.Fprintf(cmdStdout, "seeding %s on port %d\n", mi.InfoHash, c.Port())
		go statusLine(ctx, os.Stderr, t)
		<-ctx.Done()
		return c.Close()
	}
}
