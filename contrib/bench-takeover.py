#!/usr/bin/env python3
"""Takeover on PostgreSQL: how long after the SIGKILL of the daemon holding
the lease a standby holds it, under load (a backlog being processed and a
producer enqueueing at the moment of the kill). Each round: a fresh
database, EVENTS enqueued, daemon A started, then standby B; once A has
processed some of the backlog, a producer starts and A is killed; the time
until `inboxd status` names B as the holder is measured, then B must finish
the queue with every event processed exactly once.

usage: contrib/bench-takeover.py BINARY CONFIG_DIR RULES_DIR EVENTS.jsonl ADMIN_URL [ROUNDS]
(ADMIN_URL: a PostgreSQL URL whose user may create databases)
"""
import json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

binary, config, rules, events = (os.path.abspath(a) for a in sys.argv[1:5])
admin = sys.argv[5]
rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 5
count = sum(1 for _ in open(events))
base, _, _ = admin.rpartition("/")


def psql(sql):
    subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)


def inboxd(d, *args, **kw):
    return subprocess.run([binary, *args], cwd=d, capture_output=True, text=True, **kw)


def status(d):
    return json.loads(inboxd(d, "status", "--format", "json", check=True).stdout)


def holder_pid(d):
    h = status(d).get("holder")
    return int(h.rsplit(":", 1)[1]) if h else None


def processed(d):
    s = status(d)["processed"]
    return sum(s.values())


def wait(what, done, limit=120):
    start = time.time()
    while not done():
        if time.time() - start > limit:
            sys.exit(f"{what}: not within {limit} s")
        time.sleep(0.005)
    return time.time() - start


took = []
for r in range(rounds):
    db = f"inboxd_takeover_{os.getpid()}_{r}"
    psql(f"DROP DATABASE IF EXISTS {db}")
    psql(f"CREATE DATABASE {db}")
    d = tempfile.mkdtemp()
    try:
        shutil.copytree(config, f"{d}/config")
        shutil.copytree(rules, f"{d}/rules")
        path = f"{d}/config/inboxd.toml"
        text = open(path).read().replace("[store]\n", f'[store]\nurl = "{base}/{db}"\n', 1)
        text = text.replace('listen = "127.0.0.1:8040"', 'listen = "127.0.0.1:0"')
        open(path, "w").write(text)
        inboxd(d, "enqueue", events, check=True)
        env = dict(os.environ, RUST_LOG="info")
        a = subprocess.Popen([binary, "run", "--no-watch"], cwd=d, env=env,
                             stderr=open(f"{d}/a.log", "w"))
        wait("A holds the lease", lambda: holder_pid(d) == a.pid)
        b = subprocess.Popen([binary, "run", "--no-watch"], cwd=d, env=env,
                             stderr=open(f"{d}/b.log", "w"))
        wait("B stands by", lambda: "standing by" in open(f"{d}/b.log").read())
        wait("A processes the backlog", lambda: processed(d) > count // 10)
        producer = subprocess.Popen([binary, "enqueue", events], cwd=d,
                                    stderr=subprocess.DEVNULL)
        queued = status(d)["queued"]
        killed = time.time()
        a.send_signal(signal.SIGKILL)
        a.wait()
        wait("B holds the lease", lambda: holder_pid(d) == b.pid, limit=30)
        took.append(time.time() - killed)
        producer.wait()
        wait("B finishes", lambda: status(d)["queued"] == 0 and processed(d) == 2 * count, limit=600)
        b.send_signal(signal.SIGTERM)
        b.wait()
        print(f"round {r + 1}: takeover {took[-1] * 1000:.0f} ms ({queued} events queued at the kill)")
    finally:
        shutil.rmtree(d, ignore_errors=True)
        psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

print(f"takeover after SIGKILL: median {statistics.median(took) * 1000:.0f} ms, "
      f"max {max(took) * 1000:.0f} ms over {rounds} rounds")
