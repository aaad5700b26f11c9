#!/usr/bin/python3
"""Single-bit damage of merge's inputs: refused, or the same merged report.

  tests/flip_reports.py HFC_EVAL FLIPS SHARD.jsonl...

Merges the shards once as they are, then FLIPS times with one random bit of
one shard flipped (a copy in a temporary folder). Each damaged merge must
exit 3 with one line "hfc-eval: PATH: ..." naming the damaged copy (as PATH,
or, for a setting that now differs between shards, in the reason), or exit 0
with the undamaged merge's report. Compared without "seconds", "model_path"
and "data": timing and where each machine kept its files, which merge takes
as the shards give them and nothing can check. Prints one PASS or FAIL line.
"""

import json
import os
import random
import subprocess
import sys
import tempfile

IGNORED = ("seconds", "model_path", "data")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def comparable(text):
    out = []
    for line in text.splitlines():
        o = json.loads(line)
        for k in IGNORED:
            o.pop(k, None)
        out.append(o)
    return out


def main():
    hfc, flips, shards = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    rng = random.Random(23)
    blobs = []
    for p in shards:
        with open(p, "rb") as f:
            blobs.append(f.read())
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f"shard{i}.jsonl") for i in range(len(shards))]

        def merge():
            return subprocess.run([hfc, "merge", *paths], capture_output=True)

        for p, b in zip(paths, blobs):
            write(p, b)
        base = merge()
        if base.returncode:
            print(f"FAIL: merge of the undamaged shards: {base.stderr.decode().strip()}")
            return 1
        expected = comparable(base.stdout.decode())
        refused = same = 0
        problems = []
        for _ in range(flips):
            k = rng.randrange(len(blobs))
            pos = rng.randrange(len(blobs[k]))
            bit = rng.randrange(8)
            damaged = bytearray(blobs[k])
            damaged[pos] ^= 1 << bit
            write(paths[k], damaged)
            r = merge()
            err = r.stderr.decode(errors="replace")
            where = f"shard {k} byte {pos} bit {bit}"
            if r.returncode == 3:
                # the damaged file is named: as the path, or (a setting that now
                # differs between the shards) as the other side of the difference
                if err.count("\n") == 1 and err.startswith("hfc-eval: /") and paths[k] in err:
                    refused += 1
                else:
                    problems.append(f"{where}: refused without naming the file: {err.strip()}")
            elif r.returncode == 0:
                try:
                    ok = comparable(r.stdout.decode()) == expected
                except (ValueError, UnicodeDecodeError):
                    ok = False
                if ok:
                    same += 1
                else:
                    problems.append(f"{where}: accepted with another merged report: "
                                    f"{r.stdout.decode(errors='replace')[:300]}")
            else:
                problems.append(f"{where}: exit {r.returncode}: {err.strip()}")
            write(paths[k], blobs[k])
    for p in problems[1:] if os.environ.get("FLIP_VERBOSE") else []:
        print("  " + p)
    status = "FAIL" if problems else "PASS"
    print(f"{status}: merge: {flips} single-bit flips of {len(shards)} shards: {refused} refused "
          f"(exit 3, the file named), {same} give the same merged report, {len(problems)} neither"
          + (f"; first: {problems[0]}" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
