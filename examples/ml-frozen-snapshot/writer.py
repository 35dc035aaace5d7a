#!/usr/bin/env python3
"""Keeps appending labelled samples to a live directory on an fffs mount.

Each sample is a CSV row `x1,x2,x3,x4,y`: four features drawn uniformly from [-1, 1] and a
0/1 label drawn from a fixed logistic model, so a trainer has something real to learn.

The writer appends --rows rows to the current file every --interval seconds (open, write,
close: each append is one fffs version), and starts a new file `part-NNNNN.csv` after
--appends-per-file appends. It runs until SIGTERM/SIGINT (or --duration seconds), then
prints one summary line. Standard library only.

    python3 writer.py MOUNT/dataset
"""

import argparse
import math
import os
import random
import re
import signal
import sys
import time

TRUE_W = (2.0, -3.0, 0.5, 1.5)
TRUE_B = -0.25
HEADER = "x1,x2,x3,x4,y\n"
PART = re.compile(r"^part-(\d+)\.csv$")


def sample_row(rng: random.Random) -> str:
    x = [rng.uniform(-1.0, 1.0) for _ in TRUE_W]
    z = sum(w * xi for w, xi in zip(TRUE_W, x)) + TRUE_B
    y = 1 if rng.random() < 1.0 / (1.0 + math.exp(-z)) else 0
    return "%.6f,%.6f,%.6f,%.6f,%d\n" % (*x, y)


def next_index(directory: str) -> int:
    """Continue after the highest existing part, so a second run never rewrites old data."""
    indices = [int(m.group(1)) for m in (PART.match(n) for n in os.listdir(directory)) if m]
    return max(indices) + 1 if indices else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="live directory to append to, e.g. MOUNT/dataset (created if missing)")
    ap.add_argument("--rows", type=int, default=10, help="rows per append (default 10)")
    ap.add_argument("--appends-per-file", type=int, default=5, help="appends before starting a new file (default 5)")
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between appends (default 0.05)")
    ap.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (default: until signalled)")
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = ap.parse_args()

    stop = False

    def on_signal(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    os.makedirs(args.dir, exist_ok=True)
    index = next_index(args.dir)
    rng = random.Random(args.seed * 1_000_003 + index)
    deadline = time.monotonic() + args.duration if args.duration > 0 else None
    rows = files = appends = 0
    while not stop:
        path = os.path.join(args.dir, "part-%05d.csv" % index)
        for a in range(args.appends_per_file):
            chunk = "".join(sample_row(rng) for _ in range(args.rows))
            with open(path, "a") as f:  # one open/write/close = one version of the file
                f.write((HEADER if a == 0 else "") + chunk)
            rows += args.rows
            appends += 1
            if deadline is not None and time.monotonic() >= deadline:
                stop = True
            if stop:
                break
            time.sleep(args.interval)
        files += 1
        index += 1
    print("writer: stopped after %d rows in %d appends to %d files" % (rows, appends, files), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
