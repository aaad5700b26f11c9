#!/usr/bin/python3
"""The layout's rules (docs/architecture.md), checked on the sources.

  tests/check_layout.py

1. Floors: a file under src/FOLDER/ includes only headers of its own floor
   or of floors below it (src/LOWER/..., include/hfc/LOWER.h),
   so that dependencies point one way; and no two files include each other
   in a circle.
2. No .c file over 700 lines; no function over 80 lines, except in the SIMD
   kernels (src/kernels/conv_simd.h), whose tiles are long by nature.
Prints one PASS or FAIL line per rule; exits 1 if any failed.
"""

import os
import re
import sys

# Lowest first. A folder may use its own floor and every floor before it.
# The model floor is two folders: src/layers (one file per layer family)
# and src/model (the file reader that calls their parsers, the graph).
FLOORS = ["core", "kernels", "data", "model", "engine", "experiments", "report", "cli"]
FOLDER_FLOOR = {f: f for f in FLOORS} | {"layers": "model"}
# include/hfc/NAME.h belongs to the floor of the same name.
HEADER_FLOOR = {"core": "core", "data": "data", "model": "model", "engine": "engine",
                "experiments": "experiments", "report": "report"}
SIMD_FILES = {"src/kernels/conv_simd.h"}
MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 80

INCLUDE = re.compile(r'^#include "([^"]+)"', re.M)


def floor_of_include(name):
    if name.startswith("hfc/"):
        return HEADER_FLOOR.get(name[4:-2])
    if name in ("hfc.h",):
        return "report"  # the umbrella: every public floor
    if name == "hfc_layers.def":
        return "core"  # a table of names, no code
    return FOLDER_FLOOR.get(name.split("/")[0])


def sources(root):
    for d, _, files in os.walk(os.path.join(root, "src")):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(d, f), root)


def functions(text):
    """(name, first line, line count) of each top-level function body."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        if lines[i] == "{" or (lines[i].endswith("{") and not lines[i].startswith((" ", "\t", "#"))
                               and "(" in lines[i] and "=" not in lines[i]
                               and not lines[i].startswith(("typedef", "struct", "enum", "static const"))):
            start = i
            j = i
            while j < len(lines) and lines[j] != "}":
                j += 1
            k = start if lines[start] != "{" else start - 1
            while k > 0 and "(" not in lines[k]:
                k -= 1
            m = re.search(r"(\w+)\s*\(", lines[k])
            out.append((m.group(1) if m else "?", k + 1, j - k + 1))
            i = j + 1
        else:
            i += 1
    return out


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    bad_floor, bad_size = [], []
    graph = {}
    for path in sources(root):
        floor = FOLDER_FLOOR[path.split("/")[1]]
        text = open(os.path.join(root, path)).read()
        incs = INCLUDE.findall(text)
        graph[path] = [i for i in incs]
        for inc in incs:
            f = floor_of_include(inc)
            if f is None:
                bad_floor.append(f"{path}: includes \"{inc}\", of no floor")
            elif FLOORS.index(f) > FLOORS.index(floor):
                bad_floor.append(f"{path} ({floor}) includes \"{inc}\" ({f}, a higher floor)")
        if path.endswith(".c"):
            n = text.count("\n")
            if n > MAX_FILE_LINES:
                bad_size.append(f"{path}: {n} lines")
            if path not in SIMD_FILES:
                for name, line, count in functions(text):
                    if count > MAX_FUNCTION_LINES:
                        bad_size.append(f"{path}:{line}: {name}() is {count} lines")
    # circles among the project's own headers
    def resolve(inc, frm):
        for cand in (os.path.join("src", inc), os.path.join(os.path.dirname(frm), inc)):
            if cand in graph:
                return cand
        return None
    circles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for inc in graph.get(node, []):
                nxt = resolve(inc, node)
                if nxt == start:
                    circles.append(" -> ".join(trail + [nxt]))
                elif nxt and nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
    failed = 0
    for ok, what, problems in (
            (not bad_floor, "every include points to the same or a lower floor "
                            f"({' < '.join(FLOORS)})", bad_floor),
            (not circles, "no circle of includes", circles),
            (not bad_size, f"no .c file over {MAX_FILE_LINES} lines, no function over "
                           f"{MAX_FUNCTION_LINES} lines outside the SIMD kernels", bad_size)):
        print(f"{'PASS' if ok else 'FAIL'}: layout: {what}" +
              ("" if ok else f": {len(problems)}: " + "; ".join(problems[:12])))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
