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


REPEAT = 3
plain, pending, fired = [], [], []
for _ in range(REPEAT):  # alternated, each on fresh stores
    base = fresh()
    seconds, peak, start = drain_events(base)
    plain.append((count / seconds, peak))
    many = fresh()
    timers(many, 1_000_000, "2100-01-01T00:00:00Z")
    seconds, peak, start = drain_events(many)
    pending.append((count / seconds, peak, start))
    due = fresh()
    timers(due, 100_000, "2020-01-01T00:00:00Z")
    seconds, peak = run(due, ["run", "--drain"])
    fired.append((100_000 / seconds, peak))
    for d in (base, many, due):
        shutil.rmtree(d)

median = lambda xs: sorted(xs)[len(xs) // 2]
rate = median([r for r, _ in plain])
print(f"{count} events, no timer: median {rate:,.0f} events/s "
      f"(runs {', '.join(f'{r:,.0f}' for r, _ in plain)}), peak {max(p for _, p in plain) / 1024:.0f} MB")
with_timers = median([r for r, _, _ in pending])
print(f"{count} events, 1,000,000 timers pending: median {with_timers:,.0f} events/s "
      f"(runs {', '.join(f'{r:,.0f}' for r, _, _ in pending)}): {with_timers / rate:.0%} of the rate without; "
      f"start {median([s for _, _, s in pending]):.2f} s, peak {max(p for _, p, _ in pending) / 1024:.0f} MB")
timer_rate = median([r for r, _ in fired])
print(f"100,000 timers due at once: median {timer_rate:,.0f} timers/s "
      f"(runs {', '.join(f'{r:,.0f}' for r, _ in fired)}): {timer_rate / rate:.0%} of the event rate, "
      f"peak {max(p for _, p in fired) / 1024:.0f} MB")
