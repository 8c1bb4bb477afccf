package main

import (
	"context"
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
		ctx, stop := signalContext()
		defer stop()
		store, haveSet, err := openStorage(ctx, *data, mi, cache.Options{ReadOnly: true, Log: log})
		if err != nil {
			return err
		}
		defer store.Close()
		have := haveSet.Count()
		switch {
		case have == 0 && mi.Info.NumPieces() > 0:
			return fmt.Errorf("no data of %q found under %s (expected %s)", mi.Info.Name, *data, dataPath(*data, mi.Info.Name))
		case have < mi.Info.NumPieces():
			log.Warnf("only %d of %d pieces are present and valid; serving those", have, mi.Info.NumPieces())
		}
		c, err := ef.newClient(log)
		if err != nil {
			return err
		}
		defer c.Close()
		t, err := ef.addTorrent(c, mi, store, haveSet, nil)
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
