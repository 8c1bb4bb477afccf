"""Makes and reads torrents with libtorrent (Debian's python3-libtorrent 2.0), for
interop_test.go.

  ltmeta.py create v1|v2|hybrid PIECE_LENGTH SOURCE OUT   writes OUT from SOURCE (file or dir)
  ltmeta.py show TORRENT                                   prints what libtorrent reads

Both print "v1 HEX" and "v2 HEX" (or "v1 -" / "v2 -" for a hash the torrent lacks), then
"file SIZE PATH" for every file that is not a pad file, PATH as libtorrent names it
(starting with the torrent's name).
"""
import os
import sys

import libtorrent as lt


def show(ti):
    ih = ti.info_hashes()
    print("v1", str(ih.v1) if ih.has_v1() else "-")
    print("v2", str(ih.v2) if ih.has_v2() else "-")
    fs = ti.files()
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        print("file", fs.file_size(i), fs.file_path(i))


def main():
    if sys.argv[1] == "create":
        version, piece, src, out = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        flags = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}[version]
        fs = lt.file_storage()
        lt.add_files(fs, src)
        ct = lt.create_torrent(fs, piece, flags)
        lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(src)))
        with open(out, "wb") as f:
            f.write(lt.bencode(ct.generate()))
        show(lt.torrent_info(out))
    elif sys.argv[1] == "show":
        show(lt.torrent_info(sys.argv[2]))
    else:
        sys.exit("unknown command " + sys.argv[1])


main()
