#!/usr/bin/env python3
"""Where each thread of a process waited: off-CPU time per thread, and per
the innermost inboxd frames it was waiting in, from scheduler switches.

    perf record -e sched:sched_switch --call-graph dwarf,16384 -o sched.data \
        target/release/inboxd run --drain
    perf script -i sched.data -F tid,comm,time,ip,sym,event,trace > sched.txt
    contrib/offcpu.py sched.txt

A thread switched out asleep (S) or in the disk (D) is waiting; one
switched out runnable (R) was preempted. The time runs until it is
switched in again.
"""
import collections
import re
import sys

SWITCH = re.compile(
    r"\s(\d+)\s+([\d.]+): sched:sched_switch: prev_comm=.*? prev_pid=(\d+) "
    r".*prev_state=(\S+) ==> next_comm=.*? next_pid=(\d+)"
)


def switches(path):
    current = None
    for line in open(path):
        match = SWITCH.search(line)
        if match:
            current = {
                "time": float(match.group(2)),
                "prev": match.group(3),
                "state": match.group(4)[0],
                "next": match.group(5),
                "stack": [],
            }
            yield current
        elif line.strip() and current is not None:
            frame = line.strip().split(None, 1)
            if len(frame) > 1:
                current["stack"].append(re.sub(r"::h[0-9a-f]{16}", "", frame[1]))


def main(path):
    out, names = {}, {}
    by_state = collections.defaultdict(lambda: collections.Counter())
    by_place = collections.Counter()
    first = last = None
    for switch in switches(path):
        first = first if first is not None else switch["time"]
        last = switch["time"]
        left = out.pop(switch["next"], None)
        if left is not None:
            waited = switch["time"] - left["time"]
            by_state[switch["next"]][left["state"]] += waited
            if left["state"] != "R":
                frames = [f for f in left["stack"] if "inboxd::" in f][:2]
                place = " <- ".join(f[:80] for f in frames) or "(outside inboxd's code)"
                by_place[(switch["next"], place)] += waited
        out[switch["prev"]] = switch
    print(f"span {1000 * (last - first):.0f} ms")
    for tid, states in by_state.items():
        parts = ", ".join(f"{s} {1000 * t:.1f} ms" for s, t in states.most_common())
        print(f"thread {tid}: {parts}")
    for (tid, place), waited in by_place.most_common(15):
        print(f"{tid} {1000 * waited:7.1f} ms  {place}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
