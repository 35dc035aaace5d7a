#!/usr/bin/env python3
"""End to end: train twice on a frozen cut of a dataset that writers keep appending to.

    python3 run.py MOUNT [--dataset NAME]

1. starts writer.py appending samples to MOUNT/NAME/ (default: dataset) and waits until it
   holds --min-samples more samples than when we started;
2. takes T = now (UTC, µs) and runs train.py on MOUNT/NAME@T (the read waits until T is
   stable, then the cut is frozen);
3. waits until the writer has appended --more-samples more, and runs train.py on
   MOUNT/NAME@T again;
4. runs train.py on the live MOUNT/NAME/;
5. stops the writer and checks: both runs at T read byte-identical data (same SHA-256)
   and computed identical parameters and loss; the live run read different data.

Exits 0 when all checks hold, 1 otherwise. Standard library only.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))


def now_iso_micros() -> str:
    """Platform time now as ISO-8601 UTC with microseconds, e.g. 2026-11-21T10:00:00.123456Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def live_samples(directory: str) -> int:
    """Rows in the live directory (header lines excluded); a quick look, not a frozen read."""
    rows = 0
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        rows += data.count(b"\n") - data.count(b"x1,x2")
    return rows


def wait_for_samples(directory: str, at_least: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        n = live_samples(directory)
        if n >= at_least:
            return n
        if time.monotonic() > deadline:
            raise SystemExit("run: only %d samples in %s after %.0f s (wanted %d); is the writer running?" % (n, directory, timeout_s, at_least))
        time.sleep(0.05)


def train(data: str, timeout_s: float, extra: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "train.py"), "--data", data, "--json", *extra],
        capture_output=True, text=True, timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise SystemExit("run: train.py --data %s failed (exit %d): %s" % (data, proc.returncode, proc.stderr.strip()))
    return json.loads(proc.stdout)


def show(label: str, r: dict) -> None:
    print("%-13s %3d files %6d samples  sha256 %s…  loss %.12f  read %.3f s" % (label, r["files"], r["samples"], r["sha256"][:16], r["loss"], r["read_seconds"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mount", help="an fffs mount point, e.g. ./mnt with `npm start` running")
    ap.add_argument("--dataset", default="dataset", help="directory name inside the mount (default: dataset)")
    ap.add_argument("--min-samples", type=int, default=300, help="new samples to wait for before taking T (default 300)")
    ap.add_argument("--more-samples", type=int, default=300, help="samples appended between the two runs at T (default 300)")
    ap.add_argument("--epochs", type=int, default=200, help="passed to train.py (default 200)")
    ap.add_argument("--timeout", type=float, default=60.0, help="bound on every wait and every training run, seconds (default 60)")
    ap.add_argument("--json", action="store_true", help="also print a JSON summary as the last line")
    args = ap.parse_args()

    live = os.path.join(args.mount, args.dataset)
    os.makedirs(live, exist_ok=True)
    before = live_samples(live)
    writer = subprocess.Popen([sys.executable, os.path.join(HERE, "writer.py"), live], stdout=subprocess.PIPE, text=True)
    extra = ["--epochs", str(args.epochs)]
    try:
        print("writer        pid %d appending to %s" % (writer.pid, live))
        wait_for_samples(live, before + args.min_samples, args.timeout)
        t = now_iso_micros()
        frozen = "%s@%s" % (live, t)
        print("T             %s" % t)
        first = train(frozen, args.timeout, extra)
        show("run 1 @T", first)
        grown = wait_for_samples(live, live_samples(live) + args.more_samples, args.timeout)
        print("live dataset  now %d samples (the writer kept appending)" % grown)
        second = train(frozen, args.timeout, extra)
        show("run 2 @T", second)
        current = train(live, args.timeout, extra)
        show("live", current)
    finally:
        writer.send_signal(signal.SIGTERM)
        try:
            out, _ = writer.communicate(timeout=10)
            print(out.strip())
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()

    same_data = first["sha256"] == second["sha256"] and first["samples"] == second["samples"]
    same_model = first["w"] == second["w"] and first["b"] == second["b"] and first["loss"] == second["loss"]
    live_moved = current["sha256"] != first["sha256"] and current["samples"] > first["samples"]
    print()
    print("same data at T    %s  sha256 %s" % ("yes" if same_data else "NO ", first["sha256"]))
    print("same model at T   %s  w = [%s]  b = %.6f  loss %r" % ("yes" if same_model else "NO ", ", ".join("%.6f" % v for v in first["w"]), first["b"], first["loss"]))
    print("live data moved   %s  %d samples live vs %d at T, sha256 %s" % ("yes" if live_moved else "NO ", current["samples"], first["samples"], current["sha256"]))
    ok = same_data and same_model and live_moved
    print("OK" if ok else "FAILED")
    if args.json:
        print(json.dumps({"t": t, "runs": [first, second], "live": current, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
