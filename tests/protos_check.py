#!/usr/bin/python3
"""Compare `hfc-eval protos` (or `protos --push`) with tools/reference.py
protos in float64: top-K lists, similarities (1e-4 relative), nearest
positions, boxes, accuracy, per-prototype statistics; the push's nearest
image and position. Where the reference itself has two candidates within
1e-5 relative of each other (or a box edge pixel within 1e-5 of the map's
range from the 95th percentile), float32 may pick either: such places are
counted, not failed.

  tests/protos_check.py OURS.json REFERENCE.json          (protos)
  tests/protos_check.py --push OURS.json REFERENCE.json   (the push)
Prints one line; exits 1 on a difference."""
import json
import sys

TIE, REL = 1e-5, 1e-4


def close(a, b, rel=REL):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-6)


def check_push(ours, ref):
    ties = 0
    for a, b in zip(ours["prototypes"], ref["prototypes"]):
        if b["image"] is None:
            assert a["image"] is None, (a, b)
            continue
        assert close(a["distance"], b["distance"], 1e-3), (a["distance"], b["distance"])
        if (a["image"], a["position"]) != (b["image"], b["position"]):
            assert b["runner_up"] - b["distance"] <= TIE * max(b["distance"], 1e-6), (a, b)
            ties += 1
    assert len(ours["prototypes"]) == len(ref["prototypes"])
    return f"{len(ours['prototypes'])} prototypes' nearest training patches as the reference's ({ties} near-ties)"


def check_protos(ours, ref):
    ties = 0
    names = ("original", "low", "high")
    n = ours["images"]
    assert n == ref["images"]
    for v in names:
        rv = ref["versions"][v]
        assert abs(ours["correct"][v] - rv["correct"]) <= 1, (v, ours["correct"][v], rv["correct"])
        for p in ours["per_prototype"]:
            j = p["prototype"]
            assert close(p["mean_similarity"][v], rv["mean_similarity"][j]), (v, j)
            assert abs(p["top_rate"][v] - rv["top_rate"][j]) <= 2.0 / n + 1e-12, (v, j)
        for e in ours["explained"]:
            re_ = rv["explained"][str(e["index"])]
            sims = re_["similarities"]
            mine = e["versions"][v]["top"]
            assert e["versions"][v]["pred"] == re_["pred"], (v, e["index"])
            for a, b in zip(mine, re_["top"]):
                if a["prototype"] != b["prototype"]:
                    assert close(sims[a["prototype"]], sims[b["prototype"]], TIE), (v, e["index"], a, b)
                    ties += 1
                    continue
                assert close(a["similarity"], b["similarity"]), (v, e["index"], a, b)
                assert a["position"] == b["position"], (v, e["index"], a, b)
                if a["box"] != b["box"]:  # a pixel at the threshold, up to rounding
                    lo, hi = b["box_tight"], b["box_loose"]
                    assert all(hi[k] <= a["box"][k] <= lo[k] for k in (0, 1)) and \
                        all(lo[k] <= a["box"][k] <= hi[k] for k in (2, 3)), (v, e["index"], a, b)
                    ties += 1
    k = len(ours["explained"][0]["versions"]["original"]["top"]) if ours["explained"] else 0
    return (f"{n} images x 3 versions: accuracy, {len(ours['per_prototype'])} prototypes' mean similarity "
            f"and top-{k} rate, {len(ours['explained'])} images' top {k} with maps and boxes as the "
            f"reference's ({ties} near-ties)")


def main():
    args = sys.argv[1:]
    push = args[0] == "--push"
    ours, ref = (json.load(open(p)) for p in args[push:push + 2])
    try:
        print((check_push if push else check_protos)(ours, ref))
    except AssertionError as e:
        print(f"differs: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
