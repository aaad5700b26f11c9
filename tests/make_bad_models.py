#!/usr/bin/python3
"""Write broken variants of a good model file for the error-path tests.

  tests/make_bad_models.py GOOD.bin OUTDIR

Each OUTDIR/NAME.bin is GOOD.bin with one thing wrong (see BROKEN below).
"""

import hashlib
import json
import os
import struct
import sys

ALIGN = 64


def split(raw):
    version, _, hlen = struct.unpack_from("<IIQ", raw, 8)
    if version >= 3:
        raw = raw[:-32]  # the checksum
    header = json.loads(raw[24:24 + hlen])
    base = 24 + hlen + (-(24 + hlen)) % ALIGN
    return header, raw[base:]


def join(header, data, version=3, text=None):
    """A file with a valid checksum (version 3), so that the loader's later
    checks are the ones that speak."""
    text = text if text is not None else json.dumps(header).encode()
    head = b"HFCMODEL" + struct.pack("<IIQ", version, 0, len(text)) + text
    head += b"\0" * ((-len(head)) % ALIGN)
    raw = head + data
    return raw + hashlib.sha256(raw).digest() if version >= 3 else raw


def resum(body):
    """A version-3 file's bytes with the checksum made for them."""
    return body + hashlib.sha256(body).digest()


def first(header, op):
    return next(n for n in header["nodes"] if n["op"] == op)


def broken(raw):
    h, data = split(raw)
    yield "bad-magic", b"NOTMODEL" + raw[8:]
    # Damage the checksum finds: one bit of a weight; the offset typo of
    # issue 23 ("264640" -> "26464\x17"); the last bytes cut off.
    flip = bytearray(raw)
    flip[len(raw) - 100] ^= 4
    yield "checksum-weight-bit", bytes(flip)
    text = json.dumps(h, separators=(",", ":")).encode()
    off = str(h["tensors"][-1]["offset"]).encode()
    good = join(h, data, text=text)
    yield "checksum-header-byte", good.replace(b'"offset":' + off, b'"offset":' + off[:-1] + b"\x17", 1)
    # The same damage with a recomputed checksum (or none, as version 2):
    # the strict header and the layout checks refuse it on their own.
    yield "control-char", join(h, data, text=text.replace(b'"offset":' + off,
                                                         b'"offset":' + off[:-1] + b"\x17", 1))
    yield "control-char-v2", join(h, data, version=2,
                                  text=text.replace(b'"offset":' + off, b'"offset":' + off[:-1] + b"\x17", 1))
    cls = h["classes"][0].encode()
    yield "control-in-string", join(h, data, text=text.replace(b'"' + cls + b'"', b'"' + cls[:1] + b"\x01" + cls[1:] + b'"', 1))
    yield "duplicate-key", join(h, data, text=text.replace(b'"output":', b'"output":"x","output":', 1))
    yield "trailing-garbage", join(h, data, text=text + b"}")
    yield "bad-number", join(h, data, text=text.replace(b'"offset":0', b'"offset":00', 1))
    g = json.loads(json.dumps(h))
    g["tensors"][1]["offset"] = g["tensors"][0]["offset"] + 4
    yield "overlap", join(g, data)
    yield "bad-version", join(h, data, version=7)
    body = raw[:-32]
    yield "header-past-end", resum(body[:16] + struct.pack("<Q", len(raw) * 2) + body[24:])
    yield "truncated", raw[:len(raw) - 1000]
    yield "truncated-resummed", resum(body[:len(body) - 1000])
    yield "empty", b""
    hlen = struct.unpack_from("<Q", raw, 16)[0]
    yield "not-json", resum(body[:24] + b"{" * hlen + body[24 + hlen:])

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
    first(g, "relu")["op"] = "mish"
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

    # The prototype layer (ProtoPNet) with a wrong attribute or tensor; it
    # reads the flat features, whose width the linear layer's weight has.
    lin = first(h, "linear")
    for name, extra in (("proto-similarity", {"similarity": "cosine"}), ("proto-epsilon", {"epsilon": 0}),
                        ("proto-shape", {"prototypes": first(h, "conv2d")["weight"]})):
        g = json.loads(json.dumps(h))
        g["nodes"].append({"name": "proto_bad", "op": "prototype", "inputs": [lin["inputs"][0]],
                           "prototypes": lin["weight"], **extra})
        g["output"] = "proto_bad"
        yield name, join(g, data)


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
