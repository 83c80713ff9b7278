#!/usr/bin/env python3
"""Timers at scale, against the drain of the same events without them.

1. baseline: the events of EVENTS (JSON Lines) drained on an empty store;
2. the same with 1,000,000 timers pending (due in 2100): events/s and
   peak memory;
3. 100,000 timers due at once (in 2020, on tickets that do not exist, so
   that only the timers' own events run): timers fired per second.

The timers are written straight into the store (the table the daemon
keeps them in), which a real installation would have built up over time.

usage: contrib/bench-timers.py BINARY CONFIG_DIR RULES_DIR EVENTS.jsonl
"""
import os, re, shutil, sqlite3, subprocess, sys, tempfile, time

binary, config, rules, events = (os.path.abspath(a) for a in sys.argv[1:5])
count = sum(1 for _ in open(events))


def fresh():
    d = tempfile.mkdtemp()
    shutil.copytree(config, f"{d}/config")
    shutil.copytree(rules, f"{d}/rules")
    run(d, ["run", "--drain"])  # creates the store
    return d


def run(d, args):
    start = time.time()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, *args], cwd=d,
                         capture_output=True, text=True, check=True)
    peak_kb = int(out.stderr.strip().splitlines()[-1])
    return time.time() - start, peak_kb


def timers(d, n, due):
    db = sqlite3.connect(f"{d}/var/inboxd.db")
    db.executemany("INSERT INTO timers (record, id, name, due) VALUES ('ticket', ?, 'bench', ?)",
                   ((f"t{i}", due) for i in range(n)))
    db.commit()
    db.close()


def drain_events(d):
    """The drain's time less the daemon's start on that store (opening and
    checking it, which grows with its size), and its peak memory."""
    start, _ = run(d, ["run", "--drain"])
    subprocess.run([binary, "enqueue", events], cwd=d, capture_output=True, check=True)
    seconds, peak = run(d, ["run", "--drain"])
    return seconds - start, peak, start


base = fresh()
seconds, peak, start = drain_events(base)
rate = count / seconds
print(f"{count} events, no timer: {seconds:.2f} s (+ {start:.2f} s start), {rate:,.0f} events/s, peak {peak / 1024:.0f} MB")

many = fresh()
timers(many, 1_000_000, "2100-01-01T00:00:00Z")
seconds, peak, start = drain_events(many)
print(f"{count} events, 1,000,000 timers pending: {seconds:.2f} s (+ {start:.2f} s start), {count / seconds:,.0f} events/s "
      f"({count / seconds / rate:.0%} of the rate without), peak {peak / 1024:.0f} MB")

due = fresh()
timers(due, 100_000, "2020-01-01T00:00:00Z")
seconds, peak = run(due, ["run", "--drain"])
print(f"100,000 timers due at once: fired in {seconds:.2f} s, {100_000 / seconds:,.0f} timers/s "
      f"({100_000 / seconds / rate:.0%} of the event rate), peak {peak / 1024:.0f} MB")
for d in (base, many, due):
    shutil.rmtree(d)
