#!/usr/bin/env python3
"""Trains a logistic-regression model on every CSV file under a directory, reproducibly.

    python3 train.py --data MOUNT/dataset@2026-11-21T10:00:00.123456Z
    python3 train.py --data MOUNT/dataset            # live: whatever is there right now

It reads every regular file below --data (sorted by relative path), hashes what it read
(SHA-256 over each file's relative path, length and bytes, in that order), parses the CSV
rows `x1,x2,x3,x4,y`, and fits w, b by full-batch gradient descent from zero for a fixed
number of epochs. Nothing is random, so the same bytes always give the same parameters and
loss, bit for bit. Standard library only.

On fffs, `dataset@T` is the tree as of instant T: reading it waits until T is stable (no
version at or before T can still arrive), and from then on it returns the same bytes
forever, however much the writers append to the live `dataset/`.
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time


def read_tree(root: str) -> list[tuple[str, bytes]]:
    """Every regular file below root as (relative path with '/', bytes), sorted by path."""
    if not os.path.isdir(root):
        raise SystemExit("train: not a directory: %s" % root)
    files = []

    def fail(err: OSError):
        raise err

    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                files.append((os.path.relpath(full, root).replace(os.sep, "/"), f.read()))
    files.sort(key=lambda entry: entry[0])
    return files


def digest_of(files: list[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for rel, data in files:
        h.update(rel.encode() + b"\0")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def parse_samples(files: list[tuple[str, bytes]]) -> tuple[list[list[float]], list[float]]:
    xs, ys = [], []
    for rel, data in files:
        if not rel.endswith(".csv"):
            continue
        lines = data.decode().split("\n")
        lines.pop()  # the text after the last newline: '' for whole rows (fffs versions are whole appends)
        for line in lines:
            if not line or line.startswith("x1,"):
                continue
            *x, y = line.split(",")
            xs.append([float(v) for v in x])
            ys.append(float(y))
    return xs, ys


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def train(xs: list[list[float]], ys: list[float], epochs: int, lr: float):
    n, d = len(xs), len(xs[0])
    w, b = [0.0] * d, 0.0
    for _ in range(epochs):
        gw, gb = [0.0] * d, 0.0
        for x, y in zip(xs, ys):
            err = sigmoid(sum(wi * xi for wi, xi in zip(w, x)) + b) - y
            for j in range(d):
                gw[j] += err * x[j]
            gb += err
        w = [wi - lr * g / n for wi, g in zip(w, gw)]
        b -= lr * gb / n
    loss = correct = 0.0
    for x, y in zip(xs, ys):
        p = min(max(sigmoid(sum(wi * xi for wi, xi in zip(w, x)) + b), 1e-12), 1 - 1e-12)
        loss -= y * math.log(p) + (1 - y) * math.log(1 - p)
        correct += (p >= 0.5) == (y == 1.0)
    return w, b, loss / n, correct / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory to train on, e.g. MOUNT/dataset@T")
    ap.add_argument("--epochs", type=int, default=200, help="gradient-descent epochs (default 200)")
    ap.add_argument("--lr", type=float, default=1.0, help="learning rate (default 1.0)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()

    t0 = time.monotonic()
    files = read_tree(args.data)
    read_s = time.monotonic() - t0
    xs, ys = parse_samples(files)
    if not xs:
        raise SystemExit("train: no samples under %s" % args.data)
    w, b, loss, accuracy = train(xs, ys, args.epochs, args.lr)
    model = {"w": w, "b": b, "loss": loss}
    out = {
        "data": args.data,
        "files": len(files),
        "bytes": sum(len(d) for _, d in files),
        "samples": len(xs),
        "sha256": digest_of(files),
        "read_seconds": round(read_s, 4),
        "w": w,
        "b": b,
        "loss": loss,
        "accuracy": accuracy,
        # exact float reprs: equal iff the two runs computed bit-identical parameters and loss
        "model_sha256": hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest(),
        "train_seconds": round(time.monotonic() - t0 - read_s, 4),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print("data      %s" % out["data"])
        print("read      %d files, %d bytes, %d samples in %.3f s" % (out["files"], out["bytes"], out["samples"], read_s))
        print("sha256    %s" % out["sha256"])
        print("model     w = [%s]  b = %r" % (", ".join(repr(v) for v in w), b))
        print("loss      %r  (accuracy %.4f)" % (loss, accuracy))
        print("model     sha256 %s" % out["model_sha256"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
