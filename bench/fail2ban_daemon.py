#!/usr/bin/env python3
"""fail2ban's live path, side by side with bench/daemon.py: the real fail2ban-server (Debian
package `fail2ban`) with its `nftables-allports` action in a throw-away network namespace.

    sudo python3 bench/fail2ban_daemon.py [--bans N] [--samples N]

Measures, with the same kind of syslog sshd lines as bench/daemon.py:
  1. ban latency: one new address per line, appended every 100 ms; time from the write
     until the address is in fail2ban's kernel set (polled with `nft -j list set`);
  2. a burst of N distinct addresses in one write (default 1,000): time until all are in
     the kernel set, and the fail2ban-server's CPU time meanwhile.
Prints a small markdown table. Needs root, fail2ban, nftables, iproute2. Reads only
fail2ban's installed filter.d/action.d (nothing of fail2ban is copied into the repo).
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NS = f"rampart-f2b-bench-{os.getpid()}"
SET = "addr-set-bench"


def run(*argv, check=True, **kw):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


def nsrun(*argv, check=True):
    return run("ip", "netns", "exec", NS, *argv, check=check)


def stamp():
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"{now:%b} {now.day:2d} {now:%H:%M:%S}"


def kernel_set():
    r = nsrun("nft", "-j", "list", "set", "inet", "f2b-table", SET, check=False)
    if r.returncode != 0:
        return set()
    out = set()
    for obj in json.loads(r.stdout)["nftables"]:
        if "set" in obj:
            for e in obj["set"].get("elem", []):
                out.add(e if isinstance(e, str) else json.dumps(e))
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in parts[11:15]) / ticks


def v4(i):
    # The documentation ranges are too small for a burst of thousands: use 100.64.0.0/10
    # (shared address space, never routed here), one distinct address per i < 2^22.
    return f"100.{64 + (i >> 16) % 64}.{(i >> 8) & 255}.{i & 255}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bans", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=30)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    if os.geteuid() != 0:
        sys.exit("needs root")
    for tool in ("fail2ban-server", "fail2ban-client", "nft", "ip"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install fail2ban nftables iproute2)")
    work = tempfile.mkdtemp(prefix="rampart-f2b-bench-")
    conf = os.path.join(work, "conf")
    os.makedirs(conf)
    for d in ("filter.d", "action.d"):
        os.symlink(f"/etc/fail2ban/{d}", os.path.join(conf, d))
    for f in ("paths-common.conf", "paths-debian.conf"):
        if os.path.exists(f"/etc/fail2ban/{f}"):
            os.symlink(f"/etc/fail2ban/{f}", os.path.join(conf, f))
    log = os.path.join(work, "auth.log")
    open(log, "w").close()
    sock, pidf = os.path.join(work, "f2b.sock"), os.path.join(work, "f2b.pid")
    with open(os.path.join(conf, "fail2ban.conf"), "w") as f:
        f.write(f"[Definition]\nloglevel = INFO\nlogtarget = {work}/fail2ban.log\n"
                f"socket = {sock}\npidfile = {pidf}\ndbfile = {work}/f2b.sqlite3\n")
    with open(os.path.join(conf, "jail.conf"), "w") as f:
        f.write("[INCLUDES]\nbefore = paths-debian.conf\n[DEFAULT]\n"
                "[bench]\nenabled = true\nfilter = sshd\n"
                f"logpath = {log}\nbackend = pyinotify\nmaxretry = 1\nfindtime = 600\n"
                "bantime = 3600\naction = nftables-allports[name=bench]\n")
    run("ip", "netns", "add", NS)
    server = None
    try:
        nsrun("ip", "link", "set", "lo", "up")
        server = subprocess.Popen(["ip", "netns", "exec", NS, "fail2ban-server", "-f", "-x",
                                   "-c", conf, "-s", sock, "-p", pidf],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(200):
            if run("fail2ban-client", "-s", sock, "ping", check=False).returncode == 0:
                break
            time.sleep(0.05)
        else:
            sys.exit("fail2ban-server did not answer")
        time.sleep(1)
        pid = int(open(pidf).read().strip())
        # 1. latency
        lat = []
        for i in range(args.samples):
            a = f"198.51.100.{i + 1}"
            line = f"{stamp()} host sshd[{1000 + i}]: Invalid user admin from {a} port 40000\n"
            t0 = time.monotonic()
            with open(log, "a") as f:
                f.write(line)
            while a not in kernel_set():
                if time.monotonic() - t0 > 10:
                    sys.exit(f"{a} not in the kernel set after 10 s: see {work}/fail2ban.log")
                time.sleep(0.002)
            lat.append((time.monotonic() - t0) * 1000)
            time.sleep(0.1)
        lat.sort()
        # 2. burst
        n = args.bans
        lines = "".join(f"{stamp()} host sshd[{5000 + i}]: Invalid user admin from {v4(i + 300)} port 40000\n"
                        for i in range(n))
        before = len(kernel_set())
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        with open(log, "a") as f:
            f.write(lines)
        got = before
        while got < before + n and time.monotonic() - t0 < 1800:
            time.sleep(0.5)
            got = len(kernel_set())
        wall = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print("| fail2ban 1.0.2, nftables-allports | result |")
        print("|---|---|")
        print(f"| ban latency, {len(lat)} new addresses every 100 ms (line written -> in the kernel set) | "
              f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {lat[-1]:.0f} ms |")
        print(f"| {n:,} distinct bans from one write, until all are in the kernel set | "
              f"{wall:.1f} s wall, {cpu:.1f} s CPU of fail2ban-server and its nft children, "
              f"{got - before:,} of {n:,} in the set; {n / wall:.0f} bans/s, so 100k would take "
              f"about {100000 / (n / wall) / 60:.0f} min |")
    finally:
        if server is not None:
            run("fail2ban-client", "-s", sock, "stop", check=False)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.send_signal(signal.SIGKILL)
        run("ip", "netns", "del", NS, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
