#!/usr/bin/env python3
"""The metadata bench's workload: one operation kind per timed loop, plain os calls, so the
same code measures every target (ext4, fffs, GlusterFS). Each command prints one JSON object
on stdout; every timed loop reports {"count", "seconds"} measured with a monotonic clock
around the loop only (no interpreter start, no set-up). Data read back is checked, so a
target that returns short or wrong bytes fails instead of looking fast.

  workload.py seq-write FILE BYTES      write BYTES in 1 MiB writes, then close (no fsync)
  workload.py seq-read FILE             read FILE in 1 MiB reads
  workload.py small DIR COUNT PROCS MKDIRS
                                        create + 4 KiB + close (serial, then PROCS processes),
                                        stat, scandir + lstat, read, rename, unlink, mkdir
  workload.py make-files DIR COUNT PROCS BUDGET_S
                                        COUNT empty files (for the listing rows; stops at the budget)
  workload.py ls DIR                    scandir + lstat of every entry (what `ls -l` asks)
  workload.py untar TARBALL DIR         `tar -xf` of a source tree (real tar, wall time)
"""

import json
import multiprocessing
import os
import subprocess
import sys
import time
import zlib

MiB = 1024 * 1024
SMALL_BYTES = 4096


def payload(size, seed):
    """A 4 KiB page naming its seed, repeated: each file's bytes differ from every other's, so a read served from the wrong file is caught."""
    head = f"{seed:>12}".encode()
    page = (head + bytes(range(256)) * 16)[:4096]
    return (page * (size // 4096 + 1))[:size]


def timed(count, run):
    started = time.perf_counter()
    run()
    return {"count": count, "seconds": time.perf_counter() - started}


def seq_write(file, size):
    block = payload(MiB, 0)
    def run():
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        written = 0
        while written < size:
            written += os.write(fd, block[: min(MiB, size - written)])
        os.close(fd)
    result = timed(size, run)
    return {"bytes": size, "seconds": result["seconds"]}


def seq_read(file):
    # What seq_write wrote repeats every 4 KiB: compare each read with the pattern at its offset.
    # bytes == bytes is a memcmp; a memoryview compares element by element (10x slower than the read).
    pattern = payload(MiB + 8192, 0)
    block = pattern[:MiB]
    total = 0
    def run():
        nonlocal total
        fd = os.open(file, os.O_RDONLY)
        try:
            while True:
                chunk = os.read(fd, MiB)
                if not chunk:
                    break
                start = total % 4096
                expected = block if start == 0 and len(chunk) == MiB else pattern[start : start + len(chunk)]
                if chunk != expected:
                    raise RuntimeError(f"{file}: wrong bytes at offset {total}")
                total += len(chunk)
        finally:
            os.close(fd)
    result = timed(0, run)
    return {"bytes": total, "seconds": result["seconds"]}


def contents(names, size):
    """Each file's bytes, made before any timed loop (crc32: the same in every process)."""
    return [payload(size, zlib.crc32(n.encode())) if size > 0 else b"" for n in names]


def create_files(directory, names, size):
    datas = contents(names, size)
    def run():
        for name, data in zip(names, datas):
            fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            if data:
                os.write(fd, data)
            os.close(fd)
    return run


def create_worker(directory, names, size, barrier, spans):
    run = create_files(directory, names, size)
    barrier.wait()
    started = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes
    run()
    spans.put((started, time.monotonic()))


def create_parallel(directory, names, size, procs):
    """`names` split over `procs` processes released together; seconds from the first start to the last end."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(procs)
    spans = context.Queue()
    workers = [context.Process(target=create_worker, args=(directory, names[i::procs], size, barrier, spans)) for i in range(procs)]
    for w in workers:
        w.start()
    results = [spans.get(timeout=3600) for _ in workers]
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise RuntimeError(f"a create process exited with {w.exitcode}")
    return {"count": len(names), "seconds": max(end for _, end in results) - min(start for start, _ in results)}


def listing(directory):
    entries = 0
    def run():
        nonlocal entries
        with os.scandir(directory) as it:
            for entry in it:
                entry.stat(follow_symlinks=False)  # lstat, as `ls -l` does per entry
                entries += 1
    result = timed(0, run)
    return {"count": entries, "seconds": result["seconds"]}


def small(directory, count, procs, mkdirs):
    serial = os.path.join(directory, "serial")
    parallel = os.path.join(directory, "parallel")
    dirs = os.path.join(directory, "dirs")
    for d in (serial, parallel, dirs):
        os.makedirs(d)
    names = [f"f{i:06}" for i in range(count)]
    paths = [os.path.join(serial, n) for n in names]
    rows = {}
    datas = contents(names, SMALL_BYTES)
    rows["create"] = timed(count, create_files(serial, names, SMALL_BYTES))
    rows["createParallel"] = create_parallel(parallel, names, SMALL_BYTES, procs)
    rows["stat"] = timed(count, lambda: [os.stat(p) for p in paths])
    rows["ls"] = listing(serial)

    def read_each():
        for p, expected in zip(paths, datas):
            fd = os.open(p, os.O_RDONLY)
            data = os.read(fd, 65536)
            os.close(fd)
            if data != expected:
                raise RuntimeError(f"{p}: read {len(data)} bytes, not the 4 KiB written")
    rows["read"] = timed(count, read_each)
    rows["rename"] = timed(count, lambda: [os.rename(p, p + ".renamed") for p in paths])
    rows["unlink"] = timed(count, lambda: [os.unlink(p + ".renamed") for p in paths])
    rows["mkdir"] = timed(mkdirs, lambda: [os.mkdir(os.path.join(dirs, f"d{i:06}")) for i in range(mkdirs)])
    if os.listdir(serial):
        raise RuntimeError(f"{serial}: not empty after unlinking every file")
    return rows


def make_files(directory, count, procs, budget_seconds):
    """Empty files in batches of 4 processes until `count` or the budget; returns how many exist."""
    os.makedirs(directory, exist_ok=True)
    made = 0
    started = time.perf_counter()
    batch = 2000
    while made < count and time.perf_counter() - started < budget_seconds:
        names = [f"e{i:07}" for i in range(made, min(count, made + batch))]
        create_parallel(directory, names, 0, procs)
        made += len(names)
    return {"count": made, "seconds": time.perf_counter() - started, "hitBudget": made < count}


def untar(tarball, directory):
    os.makedirs(directory)
    def run():
        subprocess.run(["tar", "-xf", tarball, "-C", directory], check=True)
    result = timed(0, run)
    files = sum(len(fs) for _, _, fs in os.walk(directory))
    return {"count": files, "seconds": result["seconds"]}


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "seq-write":
        out = seq_write(args[0], int(args[1]))
    elif command == "seq-read":
        out = seq_read(args[0])
    elif command == "small":
        out = small(args[0], int(args[1]), int(args[2]), int(args[3]))
    elif command == "make-files":
        out = make_files(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif command == "ls":
        out = listing(args[0])
    elif command == "untar":
        out = untar(args[0], args[1])
    else:
        raise SystemExit(f"workload.py: unknown command {command!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
