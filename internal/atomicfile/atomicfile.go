// Package atomicfile writes a file so that readers see the old content or the new, never a
// mix: a temporary file in the same directory, synced, renamed over the old one. The
// resume file (cache) and the DHT's routing table (dht) are written this way.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path's content with data. On error the old file is untouched and no
// temporary file is left behind.
func Write(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
