package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"torrentfs/bitfield"
	"torrentfs/cache"
	"torrentfs/metainfo"
	"torrentfs/swarm"
)

func init() {
	register(&command{
		name:  "seed",
		args:  "FILE.torrent...",
		short: "serve complete data to a swarm",
		long: `Verifies each torrent's data under --data (DIR/<name> for a single file,
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
	data := fs.String("data", ".", "directory holding the torrents' data")
	spread := fs.Bool("spread", false, "send each piece about once before any piece twice, rejecting (BEP 6) requests for pieces already sent to a peer that is still downloading: for the origin of a fleet, whose uplink every node waits on")
	return func(args []string) error {
		if len(args) == 0 {
			return usagef("want a .torrent file")
		}
		log := logrus.WithField("cmd", "seed")
		ctx, stop := signalContext()
		defer stop()
		type seeded struct {
			mi    *metainfo.MetaInfo
			store *cache.Storage
			have  bitfield.Bitfield
		}
		var all []seeded
		defer func() {
			for _, s := range all {
				s.store.Close()
			}
		}()
		for _, arg := range args {
			mi, err := loadTorrent(context.Background(), arg, nil, &ef)
			if err != nil {
				return err
			}
			store, haveSet, err := openStorage(ctx, *data, mi, cache.Options{ReadOnly: true, Log: log})
			if err != nil {
				return err
			}
			all = append(all, seeded{mi, store, haveSet})
			have := haveSet.Count()
			switch {
			case have == 0 && mi.Info.NumPieces() > 0:
				return fmt.Errorf("no data of %q found under %s (expected %s)", mi.Info.Name, *data, dataPath(*data, mi.Info.Name))
			case have < mi.Info.NumPieces():
				log.Warnf("%s: only %d of %d pieces are present and valid; serving those", mi.Info.Name, have, mi.Info.NumPieces())
			}
		}
		c, err := ef.newClient(log)
		if err != nil {
			return err
		}
		defer c.Close()
		var first *swarm.Torrent
		for _, s := range all {
			t, err := ef.addTorrent(c, s.mi, s.store, s.have, func(cfg *swarm.TorrentConfig) { cfg.Spread = *spread })
			if err != nil {
				return err
			}
			if first == nil {
				first = t
			}
			log.Infof("seeding %s (%s) on %s", s.mi.Info.Name, hashText(s.mi.InfoHash, s.mi.InfoHashV2), c.Addr())
			fmt.Fprintf(cmdStdout, "seeding %s on port %d\n", hashText(s.mi.InfoHash, s.mi.InfoHashV2), c.Port())
		}
		if len(all) == 1 {
			go statusLine(ctx, os.Stderr, first)
		}
		<-ctx.Done()
		return c.Close()
	}
}
