"""Where the daemon's memory goes in bench/daemon.py step 4b: heap and anonymous mappings from
/proc/PID/smaps after 100k bans, after a SIGKILL restart, and after 1M tracked offenders.

    cargo build --release -p rampart && sudo python3 bench/daemon_smaps.py [BINARY]

TUNE=glibc.malloc.mmap_threshold=131072 passes GLIBC_TUNABLES to the daemon (for comparisons).
"""
import importlib.util, os, sys, signal, time, tempfile, shutil
spec = importlib.util.spec_from_file_location("db", os.path.join(os.path.dirname(os.path.abspath(__file__)), "daemon.py"))
db = importlib.util.module_from_spec(spec); spec.loader.exec_module(db)
db.IP = db.which("ip"); db.NFT = db.which("nft")
if os.environ.get("TUNE"):
    db.ENV = dict(db.ENV, GLIBC_TUNABLES=os.environ["TUNE"])
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target/release/rampart")

def smaps(pid, label):
    heap = anon = 0; big = []
    cur = None
    for line in open(f"/proc/{pid}/smaps"):
        parts = line.split()
        if len(parts) >= 5 and "-" in parts[0] and ":" not in parts[0]:
            cur = (parts[0], parts[5] if len(parts) > 5 else "")
        elif parts[0] == "Rss:":
            kb = int(parts[1])
            if cur[1] == "[heap]": heap += kb
            elif cur[1] == "": anon += kb; big.append((kb, cur[0]))
    rss = [l for l in open(f"/proc/{pid}/status") if l.startswith(("VmRSS", "VmHWM"))]
    big.sort(reverse=True)
    print(f"== {label}: heap {heap/1024:.1f} MiB, anon {anon/1024:.1f} MiB, {' '.join(x.strip() for x in rss)}")
    print("   biggest anon:", [f"{k/1024:.1f}" for k, _ in big[:8]])

work = tempfile.mkdtemp()
with db.Netns(f"rampart-probe-{os.getpid()}") as ns:
    db.reset_kernel(ns)
    mass_log = os.path.join(work, "mass.log"); track_log = os.path.join(work, "track.log")
    open(mass_log, "w").close(); open(track_log, "w").close()
    jails = (db.jail_block("mass", mass_log, max_failures=1, window="10m", ban_for="1h", ipv6_prefix=128)
             + db.jail_block("track", track_log, max_failures=5, window="10m", ban_for="1h",
                             ipv6_prefix=128, max_offenders=1_000_000))
    d = db.Daemon(ns, BIN, work, "mass", jails)
    try:
        d.start(); time.sleep(0.5)
        smaps(d.pid, "fresh")
        db.append(mass_log, db.v6_lines(1, 100_000, 2000))
        while d.status()["active_bans"] < 100_000: time.sleep(0.05)
        smaps(d.pid, "after 100k bans")
        d.stop(signal.SIGKILL)
        d.start(); time.sleep(1.0)
        smaps(d.pid, "after restart")
        db.append(track_log, db.v6_lines(2, 1_000_000, 3000))
        db.wait_until(lambda: d.jail("track")["lines"] >= 1_000_000 or None, 120, every=0.1)
        time.sleep(0.5)
        smaps(d.pid, "after 1M tracked")
        st = d.status()
        print("active_map_bytes", st.get("active_map_bytes"), [(j["name"], j.get("detector_bytes")) for j in st["jails"]])
    finally:
        d.stop(); db.reset_kernel(ns); shutil.rmtree(work, ignore_errors=True)
