package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"torrentfs/metainfo"
)

func init() {
	register(&command{
		name:  "info",
		args:  "FILE|MAGNET",
		short: "show what a .torrent file or magnet link holds",
		long: `Prints a torrent's name, BitTorrent version (v1, v2 or hybrid), info-hashes, size, pieces,
files, trackers, web seeds and magnet link; for a magnet link, what the link itself carries.
--json prints one JSON object.`,
		setup: setupInfo,
	})
}

// torrentJSON is the --json form of a torrent. Field names are part of the command line
// interface: scripts depend on them.
type torrentJSON struct {
	Name         string     `json:"name"`
	Version      string     `json:"version"`               // "v1", "v2" or "hybrid"
	InfoHash     string     `json:"infohash,omitempty"`    // v1, hex; absent for v2-only
	InfoHashV2   string     `json:"infohash_v2,omitempty"` // v2, hex; absent for v1-only
	Length       int64      `json:"length"`
	PieceLength  int64      `json:"piece_length"`
	Pieces       int        `json:"pieces"`
	Private      bool       `json:"private"`
	Comment      string     `json:"comment,omitempty"`
	CreatedBy    string     `json:"created_by,omitempty"`
	CreationDate int64      `json:"creation_date,omitempty"` // Unix seconds
	Files        []fileJSON `json:"files"`
	Trackers     [][]string `json:"trackers"`
	WebSeeds     []string   `json:"web_seeds"`
	Magnet       string     `json:"magnet"`
}

type fileJSON struct {
	Path   string `json:"path"` // starts with the torrent's name, "/"-separated
	Length int64  `json:"length"`
}

// magnetJSON is the --json form of a magnet link: only what the link says.
type magnetJSON struct {
	InfoHash   string     `json:"infohash,omitempty"`    // v1 (btih), hex
	InfoHashV2 string     `json:"infohash_v2,omitempty"` // v2 (btmh), hex
	Name       string     `json:"name,omitempty"`
	Trackers   [][]string `json:"trackers"` // one tier per tr, the way clients treat them
	Peers      []string   `json:"peers"`
	WebSeeds   []string   `json:"web_seeds"`
	Magnet     string     `json:"magnet"`
}

func setupInfo(fl *flag.FlagSet) func(args []string) error {
	asJSON := fl.Bool("json", false, "print one JSON object instead of text")
	return func(args []string) error {
		if len(args) != 1 {
			return usagef("want exactly one FILE or MAGNET, got %d arguments", len(args))
		}
		w := cmdStdout
		if metainfo.IsMagnet(args[0]) {
			mg, err := metainfo.ParseMagnet(args[0])
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(w, magnetToJSON(mg))
			}
			return printMagnet(w, mg)
		}
		m, err := metainfo.Load(args[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(w, torrentToJSON(m))
		}
		return printTorrent(w, m)
	}
}

func torrentToJSON(m *metainfo.MetaInfo) torrentJSON {
	j := torrentJSON{
		Name:         m.Info.Name,
		Version:      m.Info.Version.String(),
		Length:       m.Info.TotalLength,
		PieceLength:  m.Info.PieceLength,
		Pieces:       m.Info.NumPieces(),
		Private:      m.Info.Private,
		Comment:      m.Comment,
		CreatedBy:    m.CreatedBy,
		CreationDate: m.CreationDate,
		Files:        []fileJSON{},
		Trackers:     m.Trackers(),
		WebSeeds:     m.URLList,
		Magnet:       m.Magnet().String(),
	}
	if m.Info.Version.HasV1() {
		j.InfoHash = m.InfoHash.HexString()
	}
	if m.Info.Version.HasV2() {
		j.InfoHashV2 = m.InfoHashV2.HexString()
	}
	for i := range m.Info.Files {
		f := &m.Info.Files[i]
		if !f.Padding {
			j.Files = append(j.Files, fileJSON{Path: m.Info.DisplayPath(f), Length: f.Length})
		}
	}
	// Empty lists print as [] rather than null, so consumers need no special case.
	if j.Trackers == nil {
		j.Trackers = [][]string{}
	}
	if j.WebSeeds == nil {
		j.WebSeeds = []string{}
	}
	return j
}

func magnetToJSON(mg *metainfo.Magnet) magnetJSON {
	j := magnetJSON{
		Name:     mg.DisplayName,
		Trackers: [][]string{},
		Peers:    append([]string{}, mg.Peers...),
		WebSeeds: append([]string{}, mg.WebSeeds...),
		Magnet:   mg.String(),
	}
	if mg.HasV1() {
		j.InfoHash = mg.InfoHash.HexString()
	}
	if mg.HasV2() {
		j.InfoHashV2 = mg.InfoHashV2.HexString()
	}
	for _, t := range mg.Trackers {
		j.Trackers = append(j.Trackers, []string{t})
	}
	return j
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // magnet links are full of & that need no escaping
	return enc.Encode(v)
}

// versionText says what each BitTorrent version means for someone choosing a client.
var versionText = map[metainfo.Version]string{
	metainfo.V1:     "v1",
	metainfo.V2:     "v2 only (BEP 52; v1-only clients cannot use it)",
	metainfo.Hybrid: "hybrid (v1 and v2)",
}

func printTorrent(w io.Writer, m *metainfo.MetaInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	yesNo := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(tw, "name:\t%s\n", printable(m.Info.Name))
	fmt.Fprintf(tw, "version:\t%s\n", versionText[m.Info.Version])
	if m.Info.Version.HasV1() {
		fmt.Fprintf(tw, "info-hash:\t%s\n", m.InfoHash.HexString())
	}
	if m.Info.Version.HasV2() {
		fmt.Fprintf(tw, "info-hash v2:\t%s\n", m.InfoHashV2.HexString())
	}
	fmt.Fprintf(tw, "size:\t%s (%d bytes)\n", humanBytes(m.Info.TotalLength), m.Info.TotalLength)
	fmt.Fprintf(tw, "pieces:\t%d x %s (%d bytes)\n", m.Info.NumPieces(), humanBytes(m.Info.PieceLength), m.Info.PieceLength)
	fmt.Fprintf(tw, "private:\t%s\n", yesNo[m.Info.Private])
	if m.Comment != "" {
		fmt.Fprintf(tw, "comment:\t%s\n", oneLine(m.Comment))
	}
	if m.CreatedBy != "" {
		fmt.Fprintf(tw, "created by:\t%s\n", oneLine(m.CreatedBy))
	}
	if m.CreationDate != 0 {
		fmt.Fprintf(tw, "created:\t%s\n", time.Unix(m.CreationDate, 0).UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	fmt.Fprintf(tw, "magnet:\t%s\n", m.Magnet())
	if err := tw.Flush(); err != nil {
		return err
	}

	var files []*metainfo.File
	for i := range m.Info.Files {
		if !m.Info.Files[i].Padding {
			files = append(files, &m.Info.Files[i])
		}
	}
	fmt.Fprintf(w, "\nfiles (%d):\n", len(files))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, f := range files {
		fmt.Fprintf(tw, "  %s\t  %s\n", humanBytes(f.Length), printable(m.Info.DisplayPath(f)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printTiers(w, m.Trackers())
	printList(w, "web seeds", m.URLList)
	return nil
}

func printMagnet(w io.Writer, mg *metainfo.Magnet) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if mg.HasV1() {
		fmt.Fprintf(tw, "info-hash:\t%s\n", mg.InfoHash.HexString())
	}
	if mg.HasV2() {
		fmt.Fprintf(tw, "info-hash v2:\t%s\n", mg.InfoHashV2.HexString())
	}
	if mg.DisplayName != "" {
		fmt.Fprintf(tw, "name:\t%s\n", oneLine(mg.DisplayName))
	}
	fmt.Fprintf(tw, "magnet:\t%s\n", mg)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n(a magnet link carries no file list or sizes: they come from peers)")
	var tiers [][]string
	for _, t := range mg.Trackers {
		tiers = append(tiers, []string{t})
	}
	printTiers(w, tiers)
	printList(w, "peers", mg.Peers)
	printList(w, "web seeds", mg.WebSeeds)
	return nil
}

func printTiers(w io.Writer, tiers [][]string) {
	if len(tiers) == 0 {
		fmt.Fprintln(w, "\ntrackers: none")
		return
	}
	fmt.Fprintln(w, "\ntrackers:")
	for i, tier := range tiers {
		fmt.Fprintf(w, "  tier %d: %s\n", i+1, printable(strings.Join(tier, " ")))
	}
}

func printList(w io.Writer, title string, items []string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	for _, s := range items {
		fmt.Fprintf(w, "  %s\n", printable(s))
	}
}

// oneLine keeps a multi-line comment from breaking the key: value layout, and a hostile
// torrent's control characters from reaching the terminal.
func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "))
}

func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
