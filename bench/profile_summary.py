#!/usr/bin/env python3
"""Self time per operator from a LibTorch chrome trace (BENCH_PROFILE=trace.json of a bench).

Usage: bench/profile_summary.py trace.json [TOP=25]
Events nest per thread; an op's self time is its duration minus its children's.
"""
import json
import sys
from collections import defaultdict


def main():
    events = json.load(open(sys.argv[1]))
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    by_tid = defaultdict(list)
    for e in events:
        if e.get("ph") == "X":
            by_tid[e.get("tid")].append(e)
    self_t, total_t, calls = defaultdict(float), defaultdict(float), defaultdict(int)
    for evs in by_tid.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [end, name, child time]
        def close(upto):
            while stack and stack[-1][0] <= upto:
                end, name, child, dur = stack.pop()
                self_t[name] += dur - child
                if stack:
                    stack[-1][2] += dur
        for e in evs:
            ts, dur = float(e["ts"]), float(e["dur"])
            close(ts)
            stack.append([ts + dur, e["name"], 0.0, dur])
            total_t[e["name"]] += dur
            calls[e["name"]] += 1
        close(float("inf"))
    whole = sum(self_t.values())
    print(f"{'op':48s} {'calls':>6s} {'self ms':>9s} {'self %':>7s} {'total ms':>9s}")
    for name, t in sorted(self_t.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{name[:48]:48s} {calls[name]:6d} {t/1e3:9.1f} {100*t/whole:6.1f}% {total_t[name]/1e3:9.1f}")
    print(f"sum of self times: {whole/1e3:.1f} ms over {len(by_tid)} threads")


if __name__ == "__main__":
    main()
