package metainfo

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"math"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/anacrolix/torrent/bencode"
)

// benc encodes v with the reference encoder (which sorts keys and writes canonical integers).
func benc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatalf("bencode %#v: %v", v, err)
	}
	return b
}

type dict = map[string]any

// hashes returns n fake piece hashes.
func hashes(n int) string { return strings.Repeat("0123456789abcdefghij", n) }

// singleInfo is a valid single-file info dict: 50000 bytes in 2 pieces of 32 KiB.
func singleInfo() dict {
	return dict{"name": "file.bin", "piece length": 32768, "pieces": hashes(2), "length": 50000}
}

// fileEnt is one entry of a files list.
func fileEnt(length int64, path ...string) dict {
	return dict{"length": length, "path": path}
}

// multiInfo is a valid multi-file info dict with the given files and matching piece count.
func multiInfo(files ...dict) dict {
	var total int64
	list := make([]any, len(files))
	for i, f := range files {
		total += f["length"].(int64)
		list[i] = f
	}
	const pl = 16384
	n := int((total + pl - 1) / pl)
	if total < 0 || total > 1<<30 {
		n = 1 // absurd totals (overflow tests) get a token pieces field
	}
	return dict{"name": "dir", "piece length": pl, "pieces": hashes(n), "files": list}
}

func withInfo(info any) dict { return dict{"announce": "http://tracker.test/announce", "info": info} }

// with returns a copy of d with the given keys set (nil value deletes).
func with(d dict, kv ...any) dict {
	out := dict{}
	for k, v := range d {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// nested returns n lists nested in one another.
func nested(n int) []byte { return []byte(strings.Repeat("l", n) + strings.Repeat("e", n)) }

// splice builds a torrent around a raw info dict, so tests control its exact bytes.
func splice(info string) []byte {
	return []byte("d8:announce3:url4:info" + info + "e")
}

// TestParseHostile feeds broken and hostile .torrent files to Parse: each must fail with a
// clear message (and no panic) or, where noted, be accepted.
func TestParseHostile(t *testing.T) {
	valid := benc(t, withInfo(singleInfo()))
	tests := []struct {
		name    string
		data    []byte
		wantErr string // substring of the error; "" means Parse must succeed
	}{
		{"empty file", nil, "file is empty"},
		{"integer, not a dict", []byte("i42e"), "not a bencoded dictionary"},
		{"list, not a dict", []byte("le"), "not a bencoded dictionary"},
		{"text file", []byte("hello world"), "not a bencoded dictionary"},
		{"truncated in half", valid[:len(valid)/2], "truncated"},
		{"truncated by one byte", valid[:len(valid)-1], "not terminated"},
		{"trailing garbage is ignored", append(bytes.Clone(valid), "\ngarbage"...), ""},
		{"missing info", benc(t, dict{"announce": "x"}), "no info dictionary"},
		{"info is a string", benc(t, withInfo("x")), "info is a string, not a dictionary"},
		{"info is a list", benc(t, withInfo([]any{1})), "info is a list"},
		{"piece length 0", benc(t, withInfo(with(singleInfo(), "piece length", 0))), "piece length 0 is not positive"},
		{"piece length negative", benc(t, withInfo(with(singleInfo(), "piece length", -16384))), "piece length -16384 is not positive"},
		{"piece length huge", benc(t, withInfo(with(singleInfo(), "piece length", int64(1)<<40))), "larger than 256 MiB"},
		{"piece length beyond int64", splice("d6:lengthi5e4:name1:a12:piece lengthi99999999999999999999e6:pieces20:" + hashes(1) + "e"), "does not fit in 64 bits"},
		{"piece length missing", benc(t, withInfo(with(singleInfo(), "piece length", nil))), "piece length is missing"},
		{"piece length a string", benc(t, withInfo(with(singleInfo(), "piece length", "16384"))), "piece length is a string, not an integer"},
		{"pieces missing", benc(t, withInfo(with(singleInfo(), "pieces", nil))), "pieces is missing"},
		{"pieces not a string", benc(t, withInfo(with(singleInfo(), "pieces", 7))), "pieces is an integer"},
		{"pieces not a multiple of 20", benc(t, withInfo(with(singleInfo(), "pieces", hashes(2)[:39]))), "39 bytes, not a multiple of 20"},
		{"too few pieces", benc(t, withInfo(with(singleInfo(), "pieces", hashes(1)))), "1 piece hashes for 50000 bytes in pieces of 32768 (want 2)"},
		{"too many pieces", benc(t, withInfo(with(singleInfo(), "pieces", hashes(3)))), "3 piece hashes"},
		{"negative length", benc(t, withInfo(with(singleInfo(), "length", -5))), "length -5 is negative"},
		{"negative file length", benc(t, withInfo(multiInfo(fileEnt(10, "a"), fileEnt(-5, "b")))), `file "b": length -5 is negative`},
		{"length a string", benc(t, withInfo(with(singleInfo(), "length", "50000"))), "length is a string"},
		{"both length and files", benc(t, withInfo(with(multiInfo(fileEnt(10, "a")), "length", 10))), "both length and files"},
		{"both length and empty files", benc(t, withInfo(with(singleInfo(), "files", []any{}))), "both length and files"},
		{"neither length nor files", benc(t, withInfo(with(singleInfo(), "length", nil))), "neither length nor files"},
		{"empty files list", benc(t, withInfo(with(multiInfo(), "files", []any{}))), "files list is empty"},
		{"files not a list", benc(t, withInfo(with(multiInfo(), "files", "a"))), "files is a string, not a list"},
		{"file entry not a dict", benc(t, withInfo(with(multiInfo(), "files", []any{"a"}))), "file 0 is a string, not a dictionary"},
		{"file without path", benc(t, withInfo(with(multiInfo(), "files", []any{dict{"length": 1}}))), "file 0 has no path"},
		{"file path a string", benc(t, withInfo(multiInfo(dict{"length": int64(1), "path": "a"}))), "path is a string, not a list"},
		{"file path component an integer", benc(t, withInfo(multiInfo(dict{"length": int64(1), "path": []any{"a", 1}}))), "path component is an integer"},
		{"file without length", benc(t, withInfo(with(multiInfo(), "files", []any{dict{"path": []any{"a"}}}))), "file 0 length is missing"},
		{"total length 0", benc(t, withInfo(with(singleInfo(), "length", 0, "pieces", ""))), "total length 0"},
		{"all files empty", benc(t, withInfo(multiInfo(fileEnt(0, "a"), fileEnt(0, "b")))), "total length 0"},
		{"total length overflows int64", benc(t, withInfo(multiInfo(fileEnt(math.MaxInt64/2+1, "a"), fileEnt(math.MaxInt64/2+1, "b")))), "total length overflows"},
		{"largest total length, pieces do not match", benc(t, withInfo(multiInfo(fileEnt(math.MaxInt64, "a")))), "piece hashes for 9223372036854775807 bytes"},
		{"deep nesting in an unknown key", splice("d1:x" + string(nested(100)) + "e"), "nested deeper than 64"},
		{"deep nesting at the top", append([]byte("d1:x"), append(nested(100000), 'e')...), "nested deeper than 64"},
		{"1 GB string claim", []byte("d4:info1000000000:abcdefe"), "string of 1000000000 bytes runs past the end"},
		{"absurd string length", []byte("d4:info99999999999999999999999:e"), "larger than the data"},
		{"duplicate top-level key", []byte("d4:info" + string(benc(t, singleInfo())) + "4:info" + string(benc(t, singleInfo())) + "e"), `key "info" appears twice`},
		{"duplicate key in info", splice("d6:lengthi5e4:name1:a4:name1:b12:piece lengthi16384e6:pieces20:" + hashes(1) + "e"), `key "name" appears twice`},
		{"duplicate key after unsorted keys", splice("d4:name1:a6:lengthi5e4:name1:be"), `key "name" appears twice`},
		{"duplicate empty key", splice("d0:i1e0:i2ee"), `key "" appears twice`},
		{"integer with leading zero", splice("d6:lengthi05e4:name1:ae"), `malformed integer "i05e"`},
		{"negative zero", splice("d6:lengthi-0e4:name1:ae"), `malformed integer "i-0e"`},
		{"integer with plus sign", splice("d6:lengthi+5e4:name1:ae"), "malformed integer"},
		{"empty integer", splice("d6:lengthie4:name1:ae"), "malformed integer"},
		{"string length with leading zero", splice("d6:lengthi5e4:name01:ae"), `malformed string length "01"`},
		{"non-string key", []byte("di1ei2ee"), "dictionary key is not a string"},
		{"unknown type byte", []byte("d1:ax1:be"), `'x' does not start a value`},
		{"name not a string", benc(t, withInfo(with(singleInfo(), "name", []any{"a"}))), "name is a list, not a string"},
		{"name missing", benc(t, withInfo(with(singleInfo(), "name", nil))), "torrent has no name"},
		{"a file tree without meta version is ignored, as libtorrent does", benc(t, withInfo(with(singleInfo(), "file tree", dict{}))), ""},
		{"unknown keys of odd types are ignored", benc(t, withInfo(with(singleInfo(), "x", []any{dict{"z": 1}, -7}, "source", "abc"))), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				checkInvariants(t, m)
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded; want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "invalid torrent: ") {
				t.Errorf("error %q does not say the torrent is invalid", err)
			}
		})
	}
}

// checkInvariants asserts what Parse promises about any torrent it accepts.
func checkInvariants(t testing.TB, m *MetaInfo) {
	t.Helper()
	v := m.Info.Version
	if v.HasV1() && m.InfoHash != sha1.Sum(m.InfoBytes) || !v.HasV1() && m.InfoHash != (Hash{}) {
		t.Fatalf("%s torrent's v1 info-hash %s is not sha1 of InfoBytes", v, m.InfoHash)
	}
	if v.HasV2() && m.InfoHashV2 != sha256.Sum256(m.InfoBytes) || !v.HasV2() && !m.InfoHashV2.IsZero() {
		t.Fatalf("%s torrent's v2 info-hash %s is not sha256 of InfoBytes", v, m.InfoHashV2)
	}
	if v.HasV1() != (len(m.Info.Pieces) > 0) {
		t.Fatalf("%s torrent has %d v1 piece hashes", v, len(m.Info.Pieces))
	}
	again, err := ParseInfo(m.InfoBytes)
	if err != nil {
		t.Fatalf("ParseInfo(InfoBytes): %v", err)
	}
	if !reflect.DeepEqual(*again, m.Info) {
		t.Fatalf("ParseInfo(InfoBytes) = %+v; Parse gave %+v", *again, m.Info)
	}
	in := &m.Info
	if err := CheckName(in.Name); err != nil {
		t.Fatalf("name %q: %v", in.Name, err)
	}
	var sum int64
	for _, f := range in.Files {
		if in.Single != (len(f.Path) == 0) {
			t.Fatalf("file %q in a torrent with Single=%v", f.Path, in.Single)
		}
		if !in.Single {
			if err := CheckPath(f.Path); err != nil {
				t.Fatalf("file path %q: %v", f.Path, err)
			}
		}
		if f.Offset != sum || f.Length < 0 {
			t.Fatalf("file %q at %d length %d; want offset %d", f.Path, f.Offset, f.Length, sum)
		}
		sum += f.Length
	}
	if sum != in.TotalLength || sum <= 0 {
		t.Fatalf("file lengths sum to %d; TotalLength %d", sum, in.TotalLength)
	}
	if v.HasV1() && len(in.Pieces) != in.NumPieces() {
		t.Fatalf("%d piece hashes for %d pieces", len(in.Pieces), in.NumPieces())
	}
	if v.HasV2() {
		checkV2Invariants(t, m)
	}
	for p := range in.NumPieces() {
		if s := in.PieceSize(p); s <= 0 || s > in.PieceLength {
			t.Fatalf("piece %d size %d not in (0, %d]", p, s, in.PieceLength)
		}
	}
}

// TestParseInfoHashRawBytes checks the info-hash is taken over the info dictionary's bytes as
// written, including forms a re-encoding would change (unsorted keys, unknown keys).
func TestParseInfoHashRawBytes(t *testing.T) {
	tests := []struct {
		name string
		info string
	}{
		{"sorted", "d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:" + hashes(1) + "e"},
		{"unsorted keys", "d4:name1:a6:pieces20:" + hashes(1) + "12:piece lengthi16384e6:lengthi5ee"},
		{"unknown keys and big integer", "d1:xi123456789012345678901234567890e6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:" + hashes(1) + "1:zd1:bi1e1:ai2eee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := splice(tt.info)
			m, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.InfoBytes, []byte(tt.info)) {
				t.Errorf("InfoBytes = %q; want %q", m.InfoBytes, tt.info)
			}
			if m.InfoHash != sha1.Sum([]byte(tt.info)) {
				t.Errorf("info-hash is not sha1 of the raw info bytes")
			}
			checkInvariants(t, m)
		})
	}
}

func TestParseInfoStrict(t *testing.T) {
	good := benc(t, singleInfo())
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"good", good, ""},
		{"empty", nil, "not a bencoded dictionary"},
		{"list", []byte("le"), "not a bencoded dictionary"},
		{"trailing bytes", append(bytes.Clone(good), 'x'), "1 bytes after the info dictionary"},
		{"truncated", good[:len(good)-3], "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInfo(tt.data)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("ParseInfo: %v; want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestParseHugeClaimDoesNotAllocate checks that a length claim far beyond the data is refused
// before anything of that size is allocated.
func TestParseHugeClaimDoesNotAllocate(t *testing.T) {
	data := []byte("d4:info1000000000:" + strings.Repeat("x", 1000) + "e")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := Parse(data); err == nil {
		t.Fatal("Parse accepted a truncated 1 GB string")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("Parse allocated %d bytes for a %d-byte file", grew, len(data))
	}
}

// TestParseFields covers the fields outside the info dictionary and the info flags, where odd
// forms are common in the wild and are tolerated.
func TestParseFields(t *testing.T) {
	tests := []struct {
		name  string
		top   dict // merged into a valid torrent
		info  dict // merged into its info dict
		check func(t *testing.T, m *MetaInfo)
	}{
		{"url-list as a string", dict{"url-list": " http://ws/a "}, nil, func(t *testing.T, m *MetaInfo) {
			wantStrings(t, "URLList", m.URLList, "http://ws/a")
		}},
		{"url-list as a list with junk", dict{"url-list": []any{"http://ws/a", 5, "", "http://ws/b"}}, nil, func(t *testing.T, m *MetaInfo) {
			wantStrings(t, "URLList", m.URLList, "http://ws/a", "http://ws/b")
		}},
		{"url-list as an integer", dict{"url-list": 5}, nil, func(t *testing.T, m *MetaInfo) {
			wantStrings(t, "URLList", m.URLList)
		}},
		{"announce-list oddities", dict{"announce-list": []any{
			[]any{"udp://a", " ", 7, "udp://b"}, // junk items dropped
			"udp://c",                           // a tier given as one string
			[]any{},                             // empty tier dropped
			[]any{"udp://a", "udp://d"},         // repeat of udp://a dropped
			dict{"x": 1},                        // not a tier
		}}, nil, func(t *testing.T, m *MetaInfo) {
			want := [][]string{{"udp://a", "udp://b"}, {"udp://c"}, {"udp://d"}}
			if !reflect.DeepEqual(m.AnnounceList, want) || !reflect.DeepEqual(m.Trackers(), want) {
				t.Errorf("AnnounceList %q Trackers %q; want %q", m.AnnounceList, m.Trackers(), want)
			}
		}},
		{"announce-list not a list falls back to announce", dict{"announce-list": "udp://x"}, nil, func(t *testing.T, m *MetaInfo) {
			if got := m.Trackers(); !reflect.DeepEqual(got, [][]string{{"http://tracker.test/announce"}}) {
				t.Errorf("Trackers = %q", got)
			}
		}},
		{"announce as a list is ignored", dict{"announce": []any{"http://x"}}, nil, func(t *testing.T, m *MetaInfo) {
			if m.Announce != "" || m.Trackers() != nil {
				t.Errorf("Announce %q Trackers %q", m.Announce, m.Trackers())
			}
		}},
		{"comment.utf-8 preferred", dict{"comment": "legacy \xe9", "comment.utf-8": "utf-8 é"}, nil, func(t *testing.T, m *MetaInfo) {
			if m.Comment != "utf-8 é" {
				t.Errorf("Comment = %q", m.Comment)
			}
		}},
		{"creation date as a string is dropped", dict{"creation date": "2020-01-01", "created by": "x/1"}, nil, func(t *testing.T, m *MetaInfo) {
			if m.CreationDate != 0 || m.CreatedBy != "x/1" {
				t.Errorf("CreationDate %d CreatedBy %q", m.CreationDate, m.CreatedBy)
			}
		}},
		{"creation date", dict{"creation date": 1700000000}, nil, func(t *testing.T, m *MetaInfo) {
			if m.CreationDate != 1700000000 {
				t.Errorf("CreationDate %d", m.CreationDate)
			}
		}},
		{"private absent", nil, nil, wantPrivate(false)},
		{"private i1e", nil, dict{"private": 1}, wantPrivate(true)},
		{"private i0e", nil, dict{"private": 0}, wantPrivate(false)},
		{"private i2e counts as private", nil, dict{"private": 2}, wantPrivate(true)},
		{"private as string 1", nil, dict{"private": "1"}, wantPrivate(true)},
		{"private as string 0", nil, dict{"private": "0"}, wantPrivate(false)},
		{"private as a list", nil, dict{"private": []any{1}}, wantPrivate(false)},
		{"name.utf-8 preferred", nil, dict{"name": "legacy\xe9", "name.utf-8": "utf-8 é"}, func(t *testing.T, m *MetaInfo) {
			if m.Info.Name != "utf-8 é" {
				t.Errorf("Name = %q", m.Info.Name)
			}
		}},
		{"name.utf-8 that is not UTF-8 is ignored", nil, dict{"name": "plain", "name.utf-8": "bad\xff"}, func(t *testing.T, m *MetaInfo) {
			if m.Info.Name != "plain" {
				t.Errorf("Name = %q", m.Info.Name)
			}
		}},
		{"non-UTF-8 name kept as raw bytes", nil, dict{"name": "\xc8\xe3\xff.bin"}, func(t *testing.T, m *MetaInfo) {
			if m.Info.Name != "\xc8\xe3\xff.bin" {
				t.Errorf("Name = %q", m.Info.Name)
			}
		}},
		{"magnet", dict{"announce-list": []any{[]any{"udp://a", "udp://b"}, []any{"udp://c"}}, "url-list": "http://ws/"}, nil, func(t *testing.T, m *MetaInfo) {
			mg := m.Magnet()
			if mg.InfoHash != m.InfoHash || mg.DisplayName != "file.bin" {
				t.Errorf("Magnet = %+v", mg)
			}
			wantStrings(t, "Trackers", mg.Trackers, "udp://a", "udp://b", "udp://c")
			wantStrings(t, "WebSeeds", mg.WebSeeds, "http://ws/")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := with(withInfo(with(singleInfo(), flatten(tt.info)...)), flatten(tt.top)...)
			m, err := Parse(benc(t, top))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkInvariants(t, m)
			tt.check(t, m)
		})
	}
}

func flatten(d dict) []any {
	var kv []any
	for k, v := range d {
		kv = append(kv, k, v)
	}
	return kv
}

func wantPrivate(want bool) func(t *testing.T, m *MetaInfo) {
	return func(t *testing.T, m *MetaInfo) {
		if m.Info.Private != want {
			t.Errorf("Private = %v; want %v", m.Info.Private, want)
		}
	}
}

func wantStrings(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
		t.Errorf("%s = %q; want %q", what, got, want)
	}
}

// TestPathPolicy is the sanitizing policy of CheckPath, case by case: what is rejected, what
// is neutralized (rewritten) and what is accepted as it is.
func TestPathPolicy(t *testing.T) {
	long := strings.Repeat("x", 300)
	cjk := strings.Repeat("字", 100) // 300 bytes
	tests := []struct {
		name   string
		info   dict
		reject string   // error substring when rejected
		want   []string // the first file's Path (or the Name, for single-file) when accepted
	}{
		{"dot-dot component", multiInfo(fileEnt(1, "a", "..", "b")), `component ".." would leave`, nil},
		{"dot component", multiInfo(fileEnt(1, ".", "b")), `component "." would leave`, nil},
		{"absolute path (leading empty component)", multiInfo(fileEnt(1, "", "etc", "passwd")), "empty component", nil},
		{"empty component in the middle", multiInfo(fileEnt(1, "a", "", "b")), "empty component", nil},
		{"empty path", multiInfo(fileEnt(1)), "path is empty", nil},
		{"slash inside a component", multiInfo(fileEnt(1, "a/../../b")), "contains '/'", nil},
		{"leading slash in a component", multiInfo(fileEnt(1, "/etc")), "contains '/'", nil},
		{"NUL inside a component", multiInfo(fileEnt(1, "a\x00b")), "NUL byte", nil},
		{"only white space", multiInfo(fileEnt(1, "a", " \t ")), "only white space", nil},
		{"only a no-break space", multiInfo(fileEnt(1, "\u00a0")), "only white space", nil},
		{"over-long with slash is rejected, not cut", multiInfo(fileEnt(1, long+"/x")), "contains '/'", nil},
		{"over-long with NUL late is rejected, not cut", multiInfo(fileEnt(1, long+"\x00")), "NUL byte", nil},
		{"file is also a directory", multiInfo(fileEnt(1, "a"), fileEnt(1, "a", "b")), `"a" is both a file and a directory`, nil},
		{"directory is also a file (other order)", multiInfo(fileEnt(1, "a", "b", "c"), fileEnt(1, "a", "b")), `"a/b" is both a file and a directory`, nil},
		{"duplicate paths", multiInfo(fileEnt(1, "a", "b"), fileEnt(2, "a", "b")), `duplicate file path "a/b"`, nil},
		{"duplicate after path.utf-8 preference", multiInfo(
			fileEnt(1, "x"),
			dict{"length": int64(1), "path": []string{"y"}, "path.utf-8": []string{"x"}}), `duplicate file path "x"`, nil},
		{"path.utf-8 escaping while path is fine", multiInfo(
			dict{"length": int64(1), "path": []string{"ok"}, "path.utf-8": []string{".."}}), `".." would leave`, nil},
		{"duplicate after shortening", multiInfo(fileEnt(1, long+"a"), fileEnt(1, long+"b")), "duplicate file path", nil},
		{"torrent name ..", with(multiInfo(fileEnt(1, "a")), "name", ".."), `torrent name "..": component ".." would leave`, nil},
		{"torrent name .", with(singleInfo(), "name", "."), `would leave`, nil},
		{"torrent name with slash", with(singleInfo(), "name", "../x"), "contains '/'", nil},
		{"torrent name absolute", with(singleInfo(), "name", "/etc"), "contains '/'", nil},
		{"torrent name white space", with(singleInfo(), "name", "  "), "only white space", nil},
		{"torrent name with NUL", with(singleInfo(), "name", "a\x00"), "NUL byte", nil},
		{"torrent name empty", with(singleInfo(), "name", ""), "no name", nil},

		{"over-long component is shortened keeping its extension", multiInfo(fileEnt(1, "d", long+".mkv")), "",
			[]string{"d", long[:MaxComponentLength-4] + ".mkv"}},
		{"over-long CJK component is cut on a rune boundary", multiInfo(fileEnt(1, cjk)), "",
			[]string{strings.Repeat("字", 85)}},
		{"over-long torrent name is shortened", with(singleInfo(), "name", long), "", []string{long[:MaxComponentLength]}},
		{"pad files may share a path", multiInfo(fileEnt(1, "a"),
			dict{"length": int64(5), "path": []string{".pad", "5"}, "attr": "p"},
			fileEnt(1, "b"),
			dict{"length": int64(5), "path": []string{".pad", "5"}, "attr": "p"}), "", []string{"a"}},
		{"backslash is an ordinary byte", multiInfo(fileEnt(1, `a\..\b`)), "", []string{`a\..\b`}},
		{"non-UTF-8 bytes are kept", multiInfo(fileEnt(1, "caf\xe9")), "", []string{"caf\xe9"}},
		{"control characters are kept", multiInfo(fileEnt(1, "a\nb\x01")), "", []string{"a\nb\x01"}},
		{"leading and trailing spaces are kept", multiInfo(fileEnt(1, " a ")), "", []string{" a "}},
		{"dots that are not . or ..", multiInfo(fileEnt(1, "...", ".a.")), "", []string{"...", ".a."}},
		{"path.utf-8 preferred", multiInfo(dict{"length": int64(1), "path": []string{"caf\xe9"}, "path.utf-8": []string{"café"}}), "", []string{"café"}},
		{"path.utf-8 not UTF-8 is ignored", multiInfo(dict{"length": int64(1), "path": []string{"p"}, "path.utf-8": []string{"\xff"}}), "", []string{"p"}},
		{"path.utf-8 of the wrong type is ignored", multiInfo(dict{"length": int64(1), "path": []string{"p"}, "path.utf-8": "q"}), "", []string{"p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(benc(t, withInfo(tt.info)))
			if tt.reject != "" {
				if err == nil || !strings.Contains(err.Error(), tt.reject) {
					t.Fatalf("Parse: %v; want rejection containing %q", err, tt.reject)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkInvariants(t, m)
			got := m.Info.Files[0].Path
			if m.Info.Single {
				got = []string{m.Info.Name}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("path %q; want %q", got, tt.want)
			}
			for _, c := range got {
				if utf8.ValidString(tt.want[0]) && !utf8.ValidString(c) {
					t.Errorf("shortening broke UTF-8: %q", c)
				}
			}
		})
	}
}

func TestPadFiles(t *testing.T) {
	info := multiInfo(
		fileEnt(3, "a"),
		dict{"length": int64(16381), "path": []string{".pad", "16381"}, "attr": "p"},
		fileEnt(16384, "b"),
		dict{"length": int64(7), "path": []string{"_____padding_file_0_if you see this file, please update to BitComet 0.85 or above____"}},
		dict{"length": int64(1), "path": []string{"x"}, "attr": "x"},
		dict{"length": int64(0), "path": []string{"link"}, "attr": "l", "symlink path": []string{"..", "..", "etc"}},
	)
	m, err := Parse(benc(t, withInfo(info)))
	if err != nil {
		t.Fatal(err)
	}
	var pads []bool
	for _, f := range m.Info.Files {
		pads = append(pads, f.Padding)
	}
	if want := []bool{false, true, false, true, false, false}; !reflect.DeepEqual(pads, want) {
		t.Fatalf("Padding = %v; want %v", pads, want)
	}
	if m.Info.Files[2].Offset != 16384 {
		t.Fatalf("file after pad at %d; want 16384", m.Info.Files[2].Offset)
	}
	if link := m.Info.Files[5]; !reflect.DeepEqual(link.Path, []string{"link"}) || link.Length != 0 {
		t.Fatalf("symlink entry parsed as %+v; want the empty file \"link\"", link)
	}
}

func TestCheckPathAndName(t *testing.T) {
	tests := []struct {
		path    []string
		wantErr string
	}{
		{[]string{"a", "b"}, ""},
		{nil, "path is empty"},
		{[]string{""}, "empty component"},
		{[]string{"a", ".."}, "would leave"},
		{[]string{"a/b"}, "contains '/'"},
		{[]string{"a\x00"}, "NUL"},
		{[]string{"\t"}, "white space"},
		{[]string{strings.Repeat("x", 256)}, "256 bytes, longer than the 255"},
		{[]string{strings.Repeat("x", 255)}, ""},
	}
	for _, tt := range tests {
		err := CheckPath(tt.path)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("CheckPath(%q) = %v; want %q", tt.path, err, tt.wantErr)
		}
		if len(tt.path) == 1 && tt.path[0] != "" {
			nerr := CheckName(tt.path[0])
			if (nerr == nil) != (err == nil) {
				t.Errorf("CheckName(%q) = %v; CheckPath gave %v", tt.path[0], nerr, err)
			}
		}
	}
	if err := CheckName(""); err == nil {
		t.Error("CheckName accepted an empty name")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir + "/missing.torrent"); err == nil || !strings.Contains(err.Error(), "missing.torrent") {
		t.Errorf("Load of a missing file: %v", err)
	}
	p := dir + "/bad.torrent"
	writeFile(t, p, []byte("le"))
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "bad.torrent: invalid torrent") {
		t.Errorf("Load of a bad file: %v", err)
	}
	p = dir + "/good.torrent"
	writeFile(t, p, benc(t, withInfo(singleInfo())))
	if m, err := Load(p); err != nil || m.Info.Name != "file.bin" {
		t.Errorf("Load: %v", err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestErrorsAreShort checks that hostile megabyte-long values are cut short in error messages.
func TestErrorsAreShort(t *testing.T) {
	big := strings.Repeat("9", 1<<20)
	for name, data := range map[string][]byte{
		"long name with a slash": benc(t, withInfo(with(singleInfo(), "name", "/"+strings.Repeat("x", 1<<20)))),
		"long integer":           splice("d6:lengthi" + big + "e4:name1:a12:piece lengthi16384e6:pieces20:" + hashes(1) + "e"),
		"long malformed integer": splice("d6:lengthi0" + big + "ee"),
		"long duplicate key":     splice("d" + strconv.Itoa(len(big)) + ":" + big + "i1e" + strconv.Itoa(len(big)) + ":" + big + "i1ee"),
		"long duplicate path":    benc(t, withInfo(multiInfo(fileEnt(1, "d", big[:200]), fileEnt(1, "d", big[:200])))),
	} {
		_, err := Parse(data)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if len(err.Error()) > 500 {
			t.Errorf("%s: error is %d bytes long", name, len(err.Error()))
		}
	}
}

// TestBencodeBytesIsRaw records what the reference decoder's bencode.Bytes does, for packages
// that use it to carry info dictionaries (ut_metadata): it keeps the bytes exactly as written,
// unsorted keys and all, but it does not validate them (a malformed integer passes), so such
// bytes must still go through ParseInfo. Parse itself does not use it.
func TestBencodeBytesIsRaw(t *testing.T) {
	for _, info := range []string{
		"d1:bi1e1:ai2ee",        // unsorted keys
		"d1:ai1e1:ai2ee",        // duplicate key
		"d1:ai03ee",             // leading zero
		"d1:ai-0ee",             // negative zero
		"d1:ald1:zi1e1:yi2eeee", // nested unsorted
	} {
		var v struct {
			Info bencode.Bytes `bencode:"info"`
		}
		if err := bencode.Unmarshal([]byte("d4:info"+info+"e"), &v); err != nil {
			t.Errorf("%s: %v", info, err)
			continue
		}
		if string(v.Info) != info {
			t.Errorf("bencode.Bytes captured %q; want %q", v.Info, info)
		}
		if _, err := ParseInfo(v.Info); err == nil {
			t.Errorf("ParseInfo(%q) accepted an invalid info dict", info)
		}
	}
}

func BenchmarkParse10000Files(b *testing.B) {
	files := make([]dict, 10000)
	for i := range files {
		files[i] = fileEnt(int64(1000+i), "dir"+strconv.Itoa(i%100), "file "+strconv.Itoa(i)+".bin")
	}
	data := benc(b, withInfo(multiInfo(files...)))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
