"""A scripted libtorrent peer for torrentfs's interop tests (run by testpeers.Libtorrent).

usage: /usr/bin/python3 ltpeer.py --listen IP:PORT --bootstrap H:P[,H:P...] --save DIR
                                   [--seed] [--parent PID] [--add-after SECONDS] [--verbose]
                                   [--utp-only] [--peer IP:PORT ...]
                                   TORRENT_FILE_OR_MAGNET

It runs one session with one torrent: DHT on (starting only from --bootstrap), LSD, UPnP,
NAT-PMP and PEX off, TCP only (uTP only with --utp-only), plaintext allowed. Each --peer is
connected to once the torrent is added (over uTP with --utp-only, else TCP). Its stdout is for the test to wait on,
one line per event:
    listening IP:PORT       the listen socket is up (its DHT node shares the port)
    dht-bootstrapped        its DHT finished the bootstrap lookup
    added                   the torrent is added (once the DHT knows a node: see below)
    metadata                a magnet's info dictionary arrived
    progress P state S peers N dht-nodes D
                            about once a second, when something changed
    seeding                 all data is there and verified (once)
    finished                a download completed (once)
    error ...               something failed; it exits 1 after saying so
    alert: T TYPE: MESSAGE  with --verbose, every alert but statistics, T seconds from start
It exits 0 on SIGTERM or SIGINT, or when --parent is gone. It leaves with os._exit: tearing
a session down from Python can crash.
"""

import argparse
import os
import signal
import sys
import time

import libtorrent as lt


def say(*words):
    # One event a line, whatever the words hold.
    sys.stdout.write(" ".join(str(w) for w in words).replace("\n", " ") + "\n")
    sys.stdout.flush()


def leave(code):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True, help="IP:PORT for TCP peers and the DHT")
    ap.add_argument("--bootstrap", default="", help="comma-separated DHT nodes H:P")
    ap.add_argument("--save", required=True, help="directory the data is (or goes) in")
    ap.add_argument("--seed", action="store_true", help="the data must be complete: fail if not")
    ap.add_argument("--parent", type=int, default=0, help="exit when this process is gone")
    ap.add_argument("--add-after", type=float, default=10,
                    help="add the torrent after this many seconds even if the DHT knows no node by then")
    ap.add_argument("--verbose", action="store_true", help="print every alert (but stats) as alert: ...")
    ap.add_argument("--utp-only", action="store_true", help="peers over uTP only, no TCP")
    ap.add_argument("--peer", action="append", default=[], help="IP:PORT of a peer to connect to")
    ap.add_argument("torrent", help=".torrent file or magnet link")
    a = ap.parse_args()

    ip = a.listen.rpartition(":")[0]
    settings = {
        "listen_interfaces": a.listen,
        "outgoing_interfaces": ip,
        # Never an empty list: libtorrent would fall back to its public routers.
        "dht_bootstrap_nodes": a.bootstrap,
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # The lab's nodes all share one /24: by default libtorrent keeps one node per /24
        # in its table and lookups skip the rest.
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_tcp": True,
        "enable_incoming_tcp": True,
        "out_enc_policy": int(lt.enc_policy.enabled),
        "in_enc_policy": int(lt.enc_policy.enabled),
        "allowed_enc_level": int(lt.enc_level.both),
        "prefer_rc4": False,
        "alert_mask": int(lt.alert_category.error | lt.alert_category.status
                          | lt.alert_category.storage | lt.alert_category.dht
                          | lt.alert_category.tracker | lt.alert_category.connect
                          | lt.alert_category.peer),
        "user_agent": "torrentfs-ltpeer/" + lt.__version__,
    }
    if a.utp_only:
        settings.update({"enable_outgoing_utp": True, "enable_incoming_utp": True,
                         "enable_outgoing_tcp": False, "enable_incoming_tcp": False})
    if a.bootstrap == "":
        # No node at all: an unreachable, non-routable one, never a public router.
        settings["dht_bootstrap_nodes"] = "0.0.0.0:1"

    # Without the default plugins there is no ut_pex; ut_metadata is what magnets need.
    ses = lt.session(settings, 0)
    ses.add_extension("ut_metadata")
    ses.add_extension("smart_ban")

    if a.torrent.startswith("magnet:"):
        atp = lt.parse_magnet_uri(a.torrent)
    else:
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(a.torrent)
    atp.save_path = a.save
    # Added torrents start paused and auto-managed: clear both. PEX off for this torrent
    # too, in case a plugin ever brings it back.
    atp.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    atp.flags |= lt.torrent_flags.disable_pex | lt.torrent_flags.disable_lsd
    # The torrent is added once the DHT's routing table has a node (or --add-after passed):
    # a torrent added at once gets its first DHT announce (a get_peers too) before the
    # bootstrap nodes are even resolved, finds nobody, and tries again only seconds later
    # (a downloader's magnet waited minutes). The bootstrap alert is no sign: it can come
    # at once with an empty table (the nodes not resolved yet), or after 10 s and more when
    # the lookup waits out dead nodes it was told of.
    h = None
    t0 = time.monotonic()
    add_by = t0 + a.add_after

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    seeding = finished = False
    short = dht_nodes = 0
    last = None
    next_status = 0.0
    while not stop:
        if a.parent and not alive(a.parent):
            break
        ses.wait_for_alert(100 if h is None else 200)
        for al in ses.pop_alerts():
            if a.verbose and not isinstance(al, (lt.dht_stats_alert, lt.state_update_alert)):
                say("alert: %.3fs" % (time.monotonic() - t0), type(al).__name__ + ":", al.message())
            if isinstance(al, lt.listen_succeeded_alert):
                if al.socket_type == (lt.socket_type_t.utp if a.utp_only else lt.socket_type_t.tcp):
                    say("listening", "%s:%d" % (al.address, al.port))
            elif isinstance(al, lt.listen_failed_alert):
                say("error", "listen:", al.message())
                leave(1)
            elif isinstance(al, lt.dht_stats_alert):
                n = sum(b["num_nodes"] for b in al.routing_table)
                if a.verbose and h is None and n != dht_nodes:
                    say("alert: %.3fs dht-nodes %d" % (time.monotonic() - t0, n))
                dht_nodes = n
                if n > 0:
                    add_by = 0
            elif isinstance(al, lt.dht_bootstrap_alert):
                say("dht-bootstrapped")
            elif isinstance(al, lt.metadata_received_alert):
                say("metadata")
            elif isinstance(al, lt.torrent_error_alert):
                say("error", al.message())
                leave(1)
            elif isinstance(al, lt.file_error_alert):
                say("error", al.message())
                leave(1)
            elif isinstance(al, lt.torrent_finished_alert) and not finished and not a.seed:
                finished = True
                say("finished")
        now = time.monotonic()
        if h is None and now >= add_by:
            h = ses.add_torrent(atp)
            say("added")
            for p in a.peer:
                pip, _, pport = p.rpartition(":")
                # Flags are pex_flags: 1 encryption allowed, 4 uTP (the default has it).
                h.connect_peer((pip, int(pport)), 0, 0x5 if a.utp_only else 0x1)
        if h is None:
            if now >= next_status:
                next_status = now + 0.1
                ses.post_dht_stats()
            continue
        if now < next_status:
            continue
        next_status = now + 1
        ses.post_dht_stats()
        st = h.status()
        line = "progress %.4f state %s peers %d dht-nodes %d" % (
            st.progress, st.state, st.num_peers, dht_nodes)
        if line != last:
            say(line)
            last = line
        if st.is_seeding and not seeding:
            seeding = True
            say("seeding")
        # A seeder whose check left it downloading (three looks in a row, to pass over
        # the moment before its check starts) was given incomplete data.
        if a.seed and st.state == lt.torrent_status.downloading:
            short += 1
            if short >= 3:
                say("error", "--seed but the data under", a.save, "is incomplete: progress", st.progress)
                leave(1)
        else:
            short = 0
    leave(0)


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


if __name__ == "__main__":
    try:
        main()
    except SystemExit as e:
        leave(e.code if isinstance(e.code, int) else 2)
    except BaseException as e:  # noqa: BLE001 - report anything and skip the teardown
        say("error", type(e).__name__, e)
        leave(1)
