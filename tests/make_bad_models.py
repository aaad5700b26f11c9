#!/usr/bin/python3
"""Write broken variants of a good model file for the error-path tests.

  tests/make_bad_models.py GOOD.bin OUTDIR

Each OUTDIR/NAME.bin is GOOD.bin with one thing wrong (see BROKEN below).
"""

import json
import os
import struct
import sys

ALIGN = 64


def split(raw):
    hlen = struct.unpack_from("<Q", raw, 16)[0]
    header = json.loads(raw[24:24 + hlen])
    base = 24 + hlen + (-(24 + hlen)) % ALIGN
    return header, raw[base:]


def join(header, data, version=1):
    text = json.dumps(header).encode()
    head = b"HFCMODEL" + struct.pack("<IIQ", version, 0, len(text)) + text
    head += b"\0" * ((-len(head)) % ALIGN)
    return head + data


def first(header, op):
    return next(n for n in header["nodes"] if n["op"] == op)


def broken(raw):
    h, data = split(raw)
    yield "bad-magic", b"NOTMODEL" + raw[8:]
    yield "bad-version", join(h, data, version=7)
    yield "header-past-end", raw[:16] + struct.pack("<Q", len(raw) * 2) + raw[24:]
    yield "truncated", raw[:len(raw) - 1000]
    yield "empty", b""
    yield "not-json", raw[:24] + b"{" * (struct.unpack_from("<Q", raw, 16)[0]) + raw[24 + struct.unpack_from("<Q", raw, 16)[0]:]

    g = json.loads(json.dumps(h))
    g["tensors"][0]["offset"] = len(data)
    yield "tensor-past-end", join(g, data)

    g = json.loads(json.dumps(h))
    g["tensors"][0]["nbytes"] += 4
    yield "tensor-size-mismatch", join(g, data)

    g = json.loads(json.dumps(h))
    conv = first(g, "conv2d")
    t = next(t for t in g["tensors"] if t["name"] == conv["weight"])
    t["shape"] = [t["shape"][1], t["shape"][0]] + t["shape"][2:]
    yield "shape-mismatch", join(g, data)

    g = json.loads(json.dumps(h))
    first(g, "relu")["op"] = "gelu"
    yield "unknown-op", join(g, data)

    g = json.loads(json.dumps(h))
    g["nodes"][3]["inputs"] = ["no_such_node"]
    yield "dangling-input", join(g, data)

    g = json.loads(json.dumps(h))
    g["nodes"][1]["inputs"] = [g["nodes"][5]["name"]]  # uses a later node: a cycle
    yield "cycle", join(g, data)

    g = json.loads(json.dumps(h))
    t = g["tensors"][0]
    nan = bytearray(data)
    nan[t["offset"]:t["offset"] + 4] = struct.pack("<f", float("nan"))
    yield "nan-weight", join(g, bytes(nan))

    g = json.loads(json.dumps(h))
    g["classes"] = g["classes"][:5]
    yield "class-count", join(g, data)

    # Layers of format version 2 used wrongly.
    g = json.loads(json.dumps(h))
    first(g, "conv2d")["groups"] = 5  # the first conv reads the 3-channel input
    yield "bad-groups", join(g, data, version=2)

    g = json.loads(json.dumps(h))
    first(g, "relu")["op"] = "sigmoid"
    yield "v2-op-in-v1", join(g, data, version=1)

    g = json.loads(json.dumps(h))
    later = next(n for n in g["nodes"] if n["op"] == "conv2d" and n["stride"] == [2, 2])
    g["nodes"].append({"name": "cat_bad", "op": "concat", "inputs": [g["nodes"][0]["name"], later["name"]]})
    yield "concat-mismatch", join(g, data, version=2)

    g = json.loads(json.dumps(h))
    g["nodes"].append({"name": "shuffle_bad", "op": "channel_shuffle", "inputs": ["input"], "groups": 2})
    yield "shuffle-indivisible", join(g, data, version=2)


def main():
    good, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(good, "rb") as f:
        raw = f.read()
    for name, blob in broken(raw):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
