package main

import (
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

func init() {
	register(&command{
		name:  "umount",
		args:  "MOUNTPOINT",
		short: "unmount a torrentfs mount (its process then exits)",
		long: `Unmounts a directory mounted by "torrentfs mount"; the mount's process then
stops cleanly. A mount whose files are still open is busy: close them, or use --lazy to
detach it now and let it go when the last file is closed.`,
		setup: setupUmount,
	})
}

func setupUmount(fs *flag.FlagSet) func([]string) error {
	lazy := fs.Bool("lazy", false, "detach now even if files are open (fusermount3 -z)")
	return func(args []string) error {
		if len(args) != 1 {
			return usagef("want one mount point")
		}
		dir, err := filepath.Abs(args[0])
		if err != nil {
			return err
		}
		if !isMounted(dir) {
			return fmt.Errorf("%s is not mounted", dir)
		}
		argv := []string{"-u"}
		if *lazy {
			argv = append(argv, "-z")
		}
		out, err := exec.Command("fusermount3", append(argv, "--", dir)...).CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if strings.Contains(msg, "busy") {
				return fmt.Errorf("unmount %s: files are open (%s); close them or use --lazy", dir, msg)
			}
			return fmt.Errorf("unmount %s: %s (%v)", dir, msg, err)
		}
		return nil
	}
}
