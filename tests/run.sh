#!/usr/bin/env bash
# tests/run.sh - the whole suite (run it through `make check`).
#
# Counts every PASS/FAIL line and ends with "N passed, N failed"; exits 1 if
# anything failed. Tests that need the real CIFAR-10 test set look in
# $HFC_DATA, then ../shared/cifar-10-batches-bin, and say SKIP when absent.
# HFC_FULL=1 runs the fidelity test on all 10,000 images (default: 1,000).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
HFC=build/hfc-eval
REF=build/tests/ref
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0

# A section's header, and how long the one before it took (make check has
# 10 minutes: the slow sections show where to trim).
SECTION_NAME="" SECTION_START=$SECONDS
section() {
    [ -n "$SECTION_NAME" ] && echo "-- $((SECONDS - SECTION_START)) s: $SECTION_NAME"
    SECTION_NAME=$1 SECTION_START=$SECONDS
    echo "== $1"
}
ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
expect() { if [ "$1" = 0 ]; then ok "$2"; else bad "$2"; fi; }

# Run a command whose output has PASS/FAIL lines of its own and count them.
counted() {
    local out rc p f
    out=$("$@" 2>&1)
    rc=$?
    echo "$out"
    p=$(grep -c '^PASS' <<<"$out")
    f=$(grep -c '^FAIL' <<<"$out")
    [ "$rc" != 0 ] && [ "$f" = 0 ] && { echo "FAIL: $* exited $rc"; f=1; }
    passed=$((passed + p))
    failed=$((failed + f))
}

# expect_error CODE TEXT -- hfc-eval ARGS: exit CODE, one stderr line naming TEXT.
expect_error() {
    local code=$1 text=$2
    shift 3
    "$HFC" "$@" >"$T/out" 2>"$T/err"
    local rc=$? lines
    lines=$(wc -l <"$T/err")
    if [ "$rc" = "$code" ] && [ "$lines" = 1 ] && grep -q '^hfc-eval: ' "$T/err" &&
        grep -qF -- "$text" "$T/err"; then
        ok "exit $code: $(cat "$T/err")"
    else
        bad "expected exit $code with '$text', got exit $rc: $(head -c 300 "$T/err")"
    fi
}

# errors SECTION: the cases of tests/errors.txt's [SECTION], each through
# expect_error (CODE | TEXT | ARGS, split at " | "; ARGS read by the shell).
errors() {
    local section=$1 line code text args on=0
    while IFS= read -r line; do
        case $line in
        "["*"]") [ "$line" = "[$section]" ] && on=1 || on=0; continue ;;
        "" | "#"*) continue ;;
        esac
        [ $on = 1 ] || continue
        code=${line%% | *}
        rest=${line#* | }
        [ "${rest% |}" = "$rest" ] || rest="$rest " # no ARGS
        text=${rest%% | *}
        args=${rest#"$text" | }
        eval "set -- $args"
        expect_error "$code" "$text" -- "$@"
    done <tests/errors.txt
    grep -qxF "[$section]" tests/errors.txt || bad "tests/errors.txt has no [$section]"
}

section "references (PyTorch + numpy)"
"$PY" tests/gen_refs.py "$REF" >/dev/null
expect $? "tests/gen_refs.py made the reference files"

section "split vs the paper's numpy code"
counted build/test_split "$REF/split.ref" "$REF/masks.ref"

section "engine vs PyTorch, random weights and BN statistics"
ZOO=$(cd "$REF" && ls zoo-*.bin | grep -v '\.onnx\.bin$' | sed 's/\.bin$//' | tr '\n' ' ')
for f in preact preact-nobn resnet20 resnet18 vgg vgg-nobn paper paper-nobn misc misc-f16 convs modern adaptive small-maps $ZOO; do
    counted build/test_engine "$f" "$REF/$f.bin" "$REF/$f.in" "$REF/$f.out"
done
section "input gradients vs torch autograd"
for f in preact preact-nobn resnet20 resnet18 vgg vgg-nobn paper paper-nobn misc misc-f16 convs modern adaptive small-maps $ZOO; do
    counted build/test_grad "$f" "$REF/$f.bin" "$REF/$f.in" "$REF/$f.grad"
done
counted build/test_grad "preact, batch statistics" "$REF/preact.bin" "$REF/preact.in" "$REF/preact.gradbn" 20
echo "-- the ONNX route: torch.onnx.export, tools/onnx_to_hfc.py, the same logits"
for m in "$REF"/*.onnx.bin; do
    f=$(basename "$m" .onnx.bin)
    counted build/test_engine "$f.onnx" "$m" "$REF/$f.in" "$REF/$f.out"
done
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    # The default run above used Winograd and the direct kernel where they apply.
    for path in direct gemm; do
        echo "-- the same with HFC_CONV=$path (src/engine/plan.c: choose_conv_path)"
        for f in preact resnet18 vgg convs zoo-mobilenetv2 zoo-repvgg zoo-senet; do
            HFC_CONV=$path counted build/test_engine "$f" "$REF/$f.bin" "$REF/$f.in" "$REF/$f.out"
        done
    done
fi
# Every instruction set below the CPU's best (src/core/cpu.c, hfc_isa): the
# engine, zoo and gradient tests again, each name marked with it.
TILED_ISAS="" LOWER_ISAS=""
grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && TILED_ISAS=avx2 LOWER_ISAS=generic
grep -qw avx512f /proc/cpuinfo 2>/dev/null && TILED_ISAS="avx512 avx2" LOWER_ISAS="avx2 generic"
for isa in $LOWER_ISAS; do
    echo "-- the same with HFC_ISA=$isa"
    models="preact preact-nobn resnet20 resnet18 vgg vgg-nobn paper paper-nobn misc misc-f16 convs modern adaptive small-maps"
    # generic (im2col + SGEMM, as HFC_CONV=gemm) on the hand-made models only, for time
    [ "$isa" = generic ] || models="$models $ZOO"
    for f in $models; do
        HFC_ISA=$isa counted build/test_engine "$f [$isa]" "$REF/$f.bin" "$REF/$f.in" "$REF/$f.out"
        HFC_ISA=$isa counted build/test_grad "$f [$isa]" "$REF/$f.bin" "$REF/$f.in" "$REF/$f.grad"
    done
done
HFC_ISA=avx3 expect_error 1 "HFC_ISA='avx3' is not avx512, avx2 or generic" -- "$REF/preact.bin"
if ! grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    HFC_ISA=avx512 expect_error 1 "HFC_ISA=avx512: this CPU has only" -- "$REF/preact.bin"
fi

section "exporter"
out=$("$PY" - <<'EOF' 2>&1
import sys; sys.path.insert(0, "tools")
import torch, torch.nn as nn, export_pytorch
class Bad(nn.Module):
    def __init__(self):
        super().__init__(); self.c = nn.Conv2d(3, 10, 3)
    def forward(self, x):
        return torch.tanh(self.c(x)).mean((2, 3))
try:
    export_pytorch.export(Bad(), "/dev/null", mean=(0, 0, 0), std=(1, 1, 1))
except export_pytorch.ExportError as e:
    print("error:", e)
EOF
)
[[ "$out" == *"unsupported operation tanh"* ]]
expect $? "exporter names an unsupported operation ($out)"

section "the zoo (tools/zoo/models.py): hfc-eval's counts vs tools/reference.py's"
# same_counts MODEL ARGS...: hfc-eval and tools/reference.py, run with ARGS
# and --radius 0,4,8, give the same correct counts at each radius.
same_counts() {
    local m=$1
    shift
    "$HFC" "$@" --radius 0,4,8 "$m" >"$T/counts-ours" &&
        "$PY" tools/reference.py "$@" --radius 0,4,8 "$m" >"$T/counts-theirs" &&
        "$PY" - "$T/counts-ours" "$T/counts-theirs" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 3 and all(x["correct"] == y["correct"] for x, y in zip(a, b)), (a, b)
PYEOF
}
for f in $ZOO; do
    same_counts "$REF/$f.bin" --data "$REF/tiny.cifar"
    expect $? "$f: the same correct counts as tools/reference.py at r = 0, 4, 8 (40 images)"
done
out=$("$PY" - <<'PYEOF' 2>&1
import sys; sys.path.insert(0, "tools")
import torch, torch.nn as nn, export_pytorch
class IntOfSize(nn.Module):  # as one public ShuffleNetV2 writes its split
    def forward(self, x):
        c = int(x.size(1) * 0.5)
        return x[:, :c].mean((2, 3))
try:
    export_pytorch.export(IntOfSize(), "/dev/null", mean=(0, 0, 0), std=(1, 1, 1))
except export_pytorch.ExportError as e:
    print("error:", e)
PYEOF
)
[[ "$out" == "error: torch.fx cannot trace IntOfSize: TypeError: int() argument"* ]]
expect $? "exporter: a Python computation on a traced size is a clear ExportError ($out)"

section "the layout: floors, no include circles, sizes (docs/architecture.md)"
counted "$PY" tests/check_layout.py

section "the layer table and its documentation"
ops=$(sed -n 's/^HFC_\(LAYER\|UNARY\)([A-Z_0-9]*, *\([a-z_0-9]*\),.*/\2/p' include/hfc_layers.def | grep -vx input)
missing=""
for op in $ops; do
    grep -q "^| \`$op\` |" docs/model-format.md || missing="$missing docs:$op"
    grep -q "^| \`$op\` |" README.md || missing="$missing README:$op"
done
[ "$(wc -w <<<"$ops")" -ge 20 ] && [ -z "$missing" ]
expect $? "every row of include/hfc_layers.def ($(wc -w <<<"$ops") layers) has its row in README.md and docs/model-format.md${missing:+; missing:$missing}"

section "ONNX import errors"
out=$("$PY" - "$T" <<'PYEOF' 2>&1
import sys, warnings; sys.path.insert(0, "tools")
import torch, torch.nn as nn, onnx_to_hfc
class Bad(nn.Module):
    def __init__(self):
        super().__init__(); self.c = nn.Conv2d(3, 10, 3)
    def forward(self, x):
        return torch.tanh(self.c(x)).mean((2, 3))
warnings.simplefilter("ignore")
torch.onnx.export(Bad().eval(), torch.zeros(1, 3, 32, 32), sys.argv[1] + "/bad.onnx", opset_version=13)
try:
    onnx_to_hfc.convert(sys.argv[1] + "/bad.onnx", "/dev/null", mean=(0, 0, 0), std=(1, 1, 1))
except onnx_to_hfc.ConvertError as e:
    print("error:", e)
PYEOF
)
[[ "$out" == "error: Tanh node "*": unsupported operation Tanh" ]]
expect $? "onnx_to_hfc names an unsupported operation and its node ($out)"
echo 'not onnx' >"$T/junk.onnx"
"$PY" tools/onnx_to_hfc.py "$T/junk.onnx" "$T/junk.bin" --mean 0,0,0 --std 1,1,1 2>"$T/err"
[ $? = 1 ] && grep -q "junk.onnx: not an ONNX model" "$T/err" && [ ! -e "$T/junk.bin" ]
expect $? "onnx_to_hfc: a file that is not ONNX is one line, exit 1 ($(cat "$T/err"))"

section "command line"
"$HFC" --help | grep -q '^usage: hfc-eval'
expect $? "--help prints the usage"
"$HFC" --version | grep -q '^hfc-eval [0-9]'
expect $? "--version prints the version"

TINY=$REF/tiny.cifar
MODEL=$REF/preact.bin
"$HFC" --data "$TINY" --radius 0,4,30 -j 1 "$MODEL" >"$T/a.jsonl"
expect $? "a run on a generated 40-image CIFAR file succeeds"
"$PY" - "$T/a.jsonl" "$MODEL" <<'EOF'
import hashlib, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["radius"] for r in rows] == [0, 4, 30], rows
sha = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
for r in rows:
    assert r["images"] == 40 and r["model"] == "preact.bin" and r["model_sha256"] == sha
    assert all(0 <= r["accuracy"][k] <= 1 for k in ("original", "low", "high"))
    assert r["correct"]["original"] == round(r["accuracy"]["original"] * 40)
    assert sum(c["images"] for c in r["per_class"].values()) == 40
    assert r["data"].endswith("tiny.cifar") and "seconds" in r
# r=0: every low image is all zero, so one class wins for all: 4 of 40 labels.
assert rows[0]["accuracy"]["low"] == 0.1, rows[0]
# r=30 covers every frequency: every high image is all zero.
assert rows[2]["accuracy"]["high"] == 0.1, rows[2]
EOF
expect $? "JSON Lines schema; r=0 gives an all-zero low image, r=30 an all-zero high image"

"$HFC" --data "$TINY" --radius 0,4,30 -j 2 -b 7 "$MODEL" >"$T/b.jsonl"
sed 's/"seconds":[0-9.e+-]*//' "$T/a.jsonl" >"$T/a.cmp"
sed 's/"seconds":[0-9.e+-]*//' "$T/b.jsonl" >"$T/b.cmp"
cmp -s "$T/a.cmp" "$T/b.cmp"
expect $? "1 thread/batch 256 and 2 threads/batch 7 give byte-identical JSON (timing aside)"

HFC_DATA=$TINY "$HFC" --radius 4 --limit 10 --pretty "$MODEL" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert d["images"] == 10'
expect $? "HFC_DATA, --limit and --pretty"

"$HFC" compare --data "$TINY" --radius 4,8 "$MODEL" "$REF/vgg.bin" >"$T/table"
[ "$(grep -c '^preact.bin\|^vgg.bin' "$T/table")" = 4 ] && head -1 "$T/table" | grep -q 'original'
expect $? "compare prints a table of 2 models x 2 radii"

echo previous >"$T/keep.jsonl"
"$HFC" --data "$TINY" --radius 4 -o "$T/new.jsonl" "$MODEL" && [ -s "$T/new.jsonl" ]
expect $? "--output writes the file"
"$HFC" --data "$T/missing" --radius 4 -o "$T/keep.jsonl" "$MODEL" 2>/dev/null
[ "$(cat "$T/keep.jsonl")" = previous ] && [ -z "$(ls "$T" | grep tmp-)" ]
expect $? "a failed run leaves the previous --output file intact and no temporary file"

section "--output: files, links, devices, FIFOs (src/core/output.c)"
# Two reports are the same apart from the run time.
same_report() { cmp -s <(sed 's/"seconds":[0-9.e+-]*//' "$1") <(sed 's/"seconds":[0-9.e+-]*//' "$2"); }
run8() { "$HFC" --data "$TINY" --radius 4 --limit 8 "$@" "$MODEL"; }
run8 >"$T/expect.jsonl"
mkdir -p "$T/links/real"
echo old >"$T/links/real/target.jsonl"
chmod 640 "$T/links/real/target.jsonl"
ln -s real/target.jsonl "$T/links/link.jsonl"
run8 -o "$T/links/link.jsonl" && [ -L "$T/links/link.jsonl" ] &&
    same_report "$T/links/real/target.jsonl" "$T/expect.jsonl" &&
    [ "$(stat -c %a "$T/links/real/target.jsonl")" = 640 ] && [ -z "$(ls "$T/links/real" | grep tmp-)" ]
expect $? "--output through a symlink writes its target and keeps the link and the target's mode 640"
ln -s real/new.jsonl "$T/links/dangling.jsonl"
(umask 027 && run8 -o "$T/links/dangling.jsonl") && [ -L "$T/links/dangling.jsonl" ] &&
    same_report "$T/links/real/new.jsonl" "$T/expect.jsonl" && [ "$(stat -c %a "$T/links/real/new.jsonl")" = 640 ]
expect $? "--output through a dangling symlink creates its target with mode 0666 & ~umask (umask 027: 640)"
(umask 022 && run8 -o "$T/links/fresh.jsonl") && [ "$(stat -c %a "$T/links/fresh.jsonl")" = 644 ]
expect $? "a new --output file gets mode 0666 & ~umask (umask 022: 644)"
run8 -o /dev/null && [ -c /dev/null ]
expect $? "--output /dev/null: written, still a character device"
expect_error 2 "/dev/full: cannot write: No space left on device" -- --data "$TINY" --radius 4 --limit 8 -o /dev/full "$MODEL"
[ -c /dev/full ]
expect $? "/dev/full is still a character device after a failed write"
run8 -o /dev/stdout >"$T/stdout.jsonl" && [ -L /dev/stdout ] && same_report "$T/stdout.jsonl" "$T/expect.jsonl"
expect $? "--output /dev/stdout writes standard output"
echo first >"$T/append.jsonl"
run8 -o /dev/stdout >>"$T/append.jsonl" && [ "$(head -1 "$T/append.jsonl")" = first ] &&
    [ "$(wc -l <"$T/append.jsonl")" = 2 ]
expect $? "--output /dev/stdout >>FILE appends, as the shell asked"
mkfifo "$T/fifo"
timeout 60 cat "$T/fifo" >"$T/from-fifo" &  # timeout: never hang the suite
run8 -o "$T/fifo"
rc=$?
wait
[ $rc = 0 ] && [ -p "$T/fifo" ] && same_report "$T/from-fifo" "$T/expect.jsonl"
expect $? "--output FIFO: cat reads the JSON, the FIFO stays a FIFO"
expect_error 2 "is a directory" -- --data "$TINY" --radius 4 --limit 8 -o "$T/links" "$MODEL"
# A read-only directory. root ignores permission bits, so as root the run is
# made as nobody (setpriv) from copies in a directory nobody can reach.
RO=$T/ro
mkdir -p "$RO/dir"
cp "$HFC" "$TINY" "$MODEL" "$RO/"
echo old >"$RO/dir/existing.jsonl"
chmod 666 "$RO/dir/existing.jsonl"
chmod 555 "$RO/dir"
as_user=()
if [ "$(id -u)" = 0 ]; then
    chmod 755 "$T" "$RO"
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
ro_run() { "${as_user[@]}" "$RO/hfc-eval" --data "$RO/tiny.cifar" --radius 4 --limit 8 -o "$1" "$RO/preact.bin"; }
if "${as_user[@]}" true 2>/dev/null; then
    ro_run "$RO/dir/existing.jsonl" && grep -q '^{"radius":4,"mask":{"kind":"disc","radius":4},"images":8,' "$RO/dir/existing.jsonl" &&
        [ "$(stat -c %a "$RO/dir/existing.jsonl")" = 666 ]
    expect $? "--output to a file in a read-only directory rewrites it in place"
    ro_run "$RO/dir/new.jsonl" 2>"$T/ro.err"
    [ $? = 2 ] && grep -q "new.jsonl: cannot create a file beside it: Permission denied" "$T/ro.err" &&
        [ ! -e "$RO/dir/new.jsonl" ]
    expect $? "--output to a new file in a read-only directory: exit 2 ($(cat "$T/ro.err"))"
else
    echo "SKIP: read-only directory tests: cannot run as another user"
fi
chmod 755 "$RO/dir"
chmod 700 "$T"

section "progress line on stderr (a pty by script(1))"
if command -v script >/dev/null; then
    script -qec "$HFC --data $TINY --radius 4 -o /dev/null $MODEL" /dev/null >"$T/tty.out" 2>&1
    grep -q '40/40 images \[####################\] 100%' "$T/tty.out"
    expect $? "on a terminal: a progress line (images done, bar, rate, time left)"
    script -qec "$HFC --no-progress --data $TINY --radius 4 -o /dev/null $MODEL" /dev/null >"$T/tty.out" 2>&1
    ! grep -q 'images' "$T/tty.out"
    expect $? "--no-progress: none on a terminal"
else
    echo "SKIP: script(1) not installed: no pty for the progress test"
fi
run8 2>"$T/err.txt" >/dev/null && [ ! -s "$T/err.txt" ]
expect $? "stderr not a terminal: no progress line"
run8 --progress 2>"$T/err.txt" >/dev/null && grep -q '8/8 images' "$T/err.txt"
expect $? "--progress: a progress line even when stderr is a file"

section "sharding and merge"
"$HFC" --data "$TINY" --radius 0,4,30 "$MODEL" "$REF/vgg.bin" >"$T/whole.jsonl"
for N in 1 3 7; do
    rm -f "$T"/shard-*.jsonl
    for ((K = N - 1; K >= 0; K--)); do
        "$HFC" --data "$TINY" --radius 0,4,30 -b 5 --shard $K/$N "$MODEL" "$REF/vgg.bin" >"$T/shard-$K.jsonl"
    done
    "$HFC" merge "$T"/shard-*.jsonl >"$T/merged.jsonl" && same_report "$T/merged.jsonl" "$T/whole.jsonl" &&
        "$PY" -c 'import json,sys; d=[json.loads(l) for l in open(sys.argv[1])]; assert d[0]["shard"]["count"] == int(sys.argv[2])' "$T/shard-0.jsonl" $N
    expect $? "--shard K/$N for every K, then merge: byte-identical to one run (seconds aside)"
done
"$HFC" --data "$TINY" --radius 4 --pretty "$MODEL" >"$T/pretty.json" &&
    "$HFC" merge --pretty "$T/pretty.json" >"$T/pretty-merged.json" && same_report "$T/pretty-merged.json" "$T/pretty.json"
expect $? "merge reads --pretty reports and prints --pretty like a run"
for K in 0 1 2; do
    "$HFC" --data "$TINY" --radius 4,8 --shard $K/3 "$MODEL" >"$T/m-$K.jsonl"
done
"$HFC" --data "$TINY" --radius 4 --shard 1/3 "$REF/vgg.bin" >"$T/other-model.jsonl"
"$HFC" --data "$TINY" --radius 4 --shard 1/3 --limit 30 "$MODEL" >"$T/other-size.jsonl"
"$HFC" --data "$TINY" --radius 4 --shard 1/3 "$MODEL" | sed 's/"set":"test"/"set":"train"/' >"$T/other-set.jsonl"
echo '{"radius":' >"$T/broken.jsonl"
errors merge
# The GNU parallel recipe of docs/scaling.md, as written there.
if command -v parallel >/dev/null; then
    mkdir -p "$T/recipe" && ln -s "$PWD/$MODEL" "$T/recipe/model.bin"
    sed -n '/<!-- recipe:parallel/,/^```$/p' docs/scaling.md | sed '1,2d;$d' >"$T/recipe/run.sh"
    (cd "$T/recipe" && PATH="$OLDPWD/build:$PATH" HFC_DATA="$OLDPWD/$TINY" bash -e run.sh) &&
        "$HFC" --data "$TINY" --radius 4,8,12,16 "$MODEL" >"$T/recipe/whole.jsonl" &&
        [ "$(ls "$T/recipe" | grep -c '^shard-.*jsonl$')" = 8 ] &&
        "$PY" - "$T/recipe/result.jsonl" "$T/recipe/whole.jsonl" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
for x in a + b:
    for k in ("seconds", "model", "model_path", "data"):
        x.pop(k)
assert a == b and len(a) == 4, (a, b)
PYEOF
    expect $? "docs/scaling.md's GNU parallel recipe: 8 shards merged equal one run"
else
    echo "SKIP: GNU parallel not installed (docs/scaling.md recipe)"
fi

section "NumPy .npy data (src/data/npy.c)"
"$PY" - "$TINY" "$T/npy" <<'PYEOF'
import os, sys
import numpy as np
raw = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 3073)
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
labels, images = raw[:, 0].astype(np.int64), raw[:, 1:].reshape(-1, 3, 32, 32)
np.save(f"{out}/nchw.npy", images)
np.save(f"{out}/nhwc.npy", images.transpose(0, 2, 3, 1).copy())  # CIFAR-10-C's layout
np.save(f"{out}/labels.npy", labels)
np.save(f"{out}/labels-u1.npy", labels.astype(np.uint8))
np.save(f"{out}/labels-be.npy", labels.astype(">i8"))
np.save(f"{out}/labels-short.npy", labels[:-1])
bad = labels.copy()
bad[7] = 12
np.save(f"{out}/labels-bad.npy", bad)
np.save(f"{out}/object.npy", np.array([1, "a"], dtype=object))
np.save(f"{out}/float.npy", images.transpose(0, 2, 3, 1).astype(np.float64))
np.save(f"{out}/float32.npy", images.transpose(0, 2, 3, 1).astype(np.float32))
hot = images.transpose(0, 2, 3, 1).astype(np.float32)
hot[2, 5, 6, 1] = 300
np.save(f"{out}/float-range.npy", hot)
np.savez(f"{out}/stored.npz", images=images.transpose(0, 2, 3, 1), labels=labels)
np.savez_compressed(f"{out}/deflated.npz", images=images, labels=labels.astype(np.uint8))
np.savez(f"{out}/nolabels.npz", images=images.transpose(0, 2, 3, 1))
z = bytearray(open(f"{out}/stored.npz", "rb").read())
open(f"{out}/truncated.npz", "wb").write(z[:-60])
z[len(z) // 2] ^= 1
open(f"{out}/crc.npz", "wb").write(z)
good = open(f"{out}/nhwc.npy", "rb").read()
open(f"{out}/truncated.npy", "wb").write(good[:-100])
open(f"{out}/lying.npy", "wb").write(good.replace(b"(40, 32, 32, 3)", b"(41, 32, 32, 3)"))
PYEOF
"$HFC" --data "$TINY" --radius 4,8 "$MODEL" | sed 's/"data":"[^"]*"//; s/"seconds":[0-9.]*//' >"$T/npy/cifar.txt"
for args in "$T/npy/nhwc.npy --labels $T/npy/labels.npy" \
    "$T/npy/nchw.npy --layout nchw --labels $T/npy/labels-u1.npy" \
    "$T/npy/float32.npy --labels $T/npy/labels.npy" "$T/npy/stored.npz" \
    "$T/npy/deflated.npz --layout nchw"; do
    # shellcheck disable=SC2086
    "$HFC" --radius 4,8 --data $args "$MODEL" | sed 's/"data":"[^"]*"//; s/"seconds":[0-9.]*//' |
        cmp -s - "$T/npy/cifar.txt"
    expect $? ".npy --data ${args#"$T"/npy/}: the same report as the CIFAR file it came from"
done
"$HFC" --radius 4 --shard 1/2 --data "$T/npy/nhwc.npy" --labels "$T/npy/labels.npy" "$MODEL" |
    grep -q '"images":20,'
expect $? ".npy with --shard"
errors npy

section "any data at any size (src/data: idx, .npz, folders, CIFAR-10-C; the split at any H x W)"
AS=$T/anysize
AS_SRC=${HFC_DATA:-../shared/cifar-10-batches-bin}/test_batch.bin
[ -f "$AS_SRC" ] || AS_SRC=$TINY
"$PY" tests/any_size.py data "$AS_SRC" "$AS"
expect $? "tests/any_size.py wrote PNG and JPEG folders, .npy at 64, 96 and 31 x 33, idx files"
for s in "3 64 64 up64" "3 96 96 up96" "1 28 28 grey" "3 31 33 odd" "3 32 32 cifar"; do
    set -- $s
    "$PY" tests/any_size.py model "$AS/m$2x$3c$1.bin" "$1" "$2" "$3" "$AS/$4.npy" ||
        bad "tests/any_size.py model $s"
done
counted "$PY" tests/sources.py split build/test_sources "$AS"
for f in png jpeg mixed; do
    counted "$PY" tests/sources.py folder build/test_sources "$([ $f = mixed ] && echo mixed || echo "$AS/$f")"
done
# same_counts MODEL ARGS...: hfc-eval's correct counts equal tools/reference.py's at r = 0, 4, 8 and the band 2:6
same_counts() {
    local m=$1
    shift
    "$HFC" --radius 0,4,8,2:6 "$@" "$m" >"$T/as-hfc.jsonl" 2>"$T/as-err" &&
        "$PY" tools/reference.py --radius 0,4,8,2:6 "$@" "$m" >"$T/as-ref.jsonl" 2>>"$T/as-err" &&
        "$PY" - "$T/as-hfc.jsonl" "$T/as-ref.jsonl" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
key = lambda r: str(r["radius"]).replace(".0", "")
ca = {key(r): r["correct"] for r in a}
cb = {key(r): r["correct"] for r in b}
assert ca == cb and len(ca) == 4, (ca, cb)
print(" ".join(f"r={k} {v['original']}/{v['low']}/{v['high']}" for k, v in ca.items()), f"of {a[0]['images']}")
PYEOF
}
for c in "m32x32c3 --data $AS/png --dataset folder" "m32x32c3 --data $AS/jpeg --dataset folder" \
    "m64x64c3 --data $AS/png --dataset folder --resize 64" \
    "m28x28c1 --data $AS/jpeg --dataset folder --resize 30 --crop 28" \
    "m64x64c3 --data $AS/up64.npy --labels $AS/labels.npy" \
    "m96x96c3 --data $AS/up96.npy --labels $AS/labels.npy --layout nchw" \
    "m31x33c3 --data $AS/odd.npy --labels $AS/labels.npy" \
    "m28x28c1 --data $AS/mnist --dataset mnist" "m28x28c1 --data $AS/raw-images-idx3-ubyte --dataset mnist"; do
    set -- $c
    m=$AS/$1.bin
    shift
    out=$(same_counts "$m" "$@")
    expect $? "$(basename "$m") $* : counts equal tools/reference.py's: $out $(head -c 300 "$T/as-err")"
done
"$HFC" --data "$AS/up64.npy" --labels "$AS/labels.npy" --radius 4 "$AS/m64x64c3.bin" |
    grep -q '"image_size":\[3,64,64\]'
expect $? "reports name an image size other than 3 x 32 x 32"

"$PY" tools/corrupt.py --data "$AS_SRC" --limit 30 --corruption gaussian_noise,contrast,brightness "$AS/c10c" 2>/dev/null
"$HFC" --data "$AS/c10c" --radius 4 "$MODEL" >"$T/c10c.jsonl" &&
    "$PY" - "$T/c10c.jsonl" <<'PYEOF'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
got = [(x["corruption"], x["severity"]) for x in r]
want = [(c, s) for c in ("brightness", "contrast", "gaussian_noise") for s in range(1, 6)]
assert got == want and all(x["images"] == 30 and x["dataset"] == "cifar10-c" for x in r), got
PYEOF
expect $? "CIFAR-10-C: every corruption tools/corrupt.py wrote at every severity, one JSON line each"
"$HFC" --data "$AS/c10c" --corruption contrast --severity 3 --radius 0,4,8,2:6 "$MODEL" | "$PY" -c '
import json, sys; print(json.dumps({str(r["radius"]): r["correct"] for r in map(json.loads, sys.stdin)}, sort_keys=True))' >"$T/c10c-one" &&
    "$PY" tools/reference.py --dataset cifar10-c --data "$AS/c10c" --corruption contrast --severity 3 \
        --radius 0,4,8,2:6 "$MODEL" | "$PY" -c '
import json, sys; print(json.dumps({str(r["radius"]).replace(".0", ""): r["correct"] for r in map(json.loads, sys.stdin)}, sort_keys=True))' |
    cmp -s - "$T/c10c-one"
expect $? "CIFAR-10-C contrast at severity 3: counts equal tools/reference.py's"
"$HFC" compare --data "$AS/c10c" --corruption gaussian_noise --severity 1,5 --radius 4 "$MODEL" "$MODEL" >"$T/c10c.txt" &&
    [ "$(wc -l <"$T/c10c.txt")" = 5 ] && head -1 "$T/c10c.txt" | grep -q '^corruption *severity model' &&
    grep -c '^gaussian_noise  *5 ' "$T/c10c.txt" | grep -qx 2
expect $? "compare --table on a sweep: one header, a row per corruption, severity, model and radius"

# converters at other sizes: --input-size, and ONNX exported with a dynamic batch axis
"$PY" - "$AS" <<'PYEOF' &&
import sys, torch, torch.nn as nn
torch.manual_seed(1)
m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
torch.onnx.export(m, torch.zeros(1, 3, 32, 32), sys.argv[1] + "/dyn.onnx", input_names=["x"],
                  dynamic_axes={"x": {0: "n"}}, opset_version=13)
PYEOF
    "$PY" tools/onnx_to_hfc.py "$AS/dyn.onnx" "$AS/dyn64.bin" --mean 0.45,0.45,0.45 --std 0.25,0.25,0.25 \
        --input-size 3,64,64 && out=$(same_counts "$AS/dyn64.bin" --data "$AS/up64.npy" --labels "$AS/labels.npy")
expect $? "ONNX with a dynamic batch axis, converted with --input-size 3,64,64: counts equal tools/reference.py's: $out"
"$PY" tests/any_size.py ceil "$AS/ceil.bin" "$AS/ceil.onnx" "$AS/odd.npy" &&
    "$PY" tools/onnx_to_hfc.py "$AS/ceil.onnx" "$AS/ceil-onnx.bin" --mean 0.45,0.45,0.45 --std 0.25,0.25,0.25
expect $? "pools in ceil mode: both routes convert"
for m in ceil ceil-onnx; do
    out=$(same_counts "$AS/$m.bin" --data "$AS/odd.npy" --labels "$AS/labels.npy")
    expect $? "$m.bin (max and average pools with ceil_mode at 31 x 33): counts equal tools/reference.py's: $out"
done
"$PY" tests/any_size.py gelu "$AS/gelu.bin" 3 31 33 "$AS/odd.npy" &&
    out=$(same_counts "$AS/gelu.bin" --data "$AS/odd.npy" --labels "$AS/labels.npy")
expect $? "gelu (exact erf form): counts equal tools/reference.py's: $out"
"$PY" tools/export_pytorch.py --family resnet20 --input-size 3,48,40 "$AS/r20.bin" &&
    "$PY" -c 'import json,sys; sys.path.insert(0,"tools"); import export_pytorch as e; h=e.read(sys.argv[1])[0]; assert h["input"]["height"] == 48 and h["input"]["width"] == 40, h["input"]' "$AS/r20.bin"
expect $? "tools/export_pytorch.py --input-size 3,48,40 records the input it takes"

# every experiment at other sizes
"$HFC" heatmap --data "$AS/up64.npy" --labels "$AS/labels.npy" --limit 12 --extent 5 "$AS/m64x64c3.bin" |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert len(d["error"]) == 5 and len(d["error"][0]) == 5 and d["first_frequency"] == [-2, -2], d'
expect $? "heatmap --extent 5 at 64 x 64: the 5 x 5 cells centred on DC"
"$HFC" heatmap --data "$AS/odd.npy" --labels "$AS/labels.npy" --limit 4 --eps 8 --extent 40 "$AS/m31x33c3.bin" |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert len(d["error"]) == 31 and len(d["error"][0]) == 33 and "extent" not in d'
expect $? "heatmap --extent 40 at 31 x 33: every cell"
"$HFC" heatmap --data "$AS/odd.npy" --labels "$AS/labels.npy" --limit 2 "$AS/m31x33c3.bin" |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert len(d["error"]) == 31 and len(d["error"][0]) == 31 and d["first_frequency"] == [-15, -15]'
expect $? "heatmap at 31 x 33 (wider than 32): the 31 x 31 cells centred on DC by default"
"$HFC" margin --data "$AS/mnist" --limit 3 --block 7 --stride 7 --max-iter 20 "$AS/m28x28c1.bin" |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert [s["offset"] for s in d["subspaces"]] == [0, 7, 14, 21]'
expect $? "margin at 28 x 28: DCT blocks over the whole image"
"$HFC" attack --data "$AS/odd.npy" --labels "$AS/labels.npy" --limit 12 --method pgd --steps 2 --eps 0.03 \
    --radius 4 "$AS/m31x33c3.bin" | grep -c '"attack":"pgd"' | grep -qx 1
expect $? "attack at 31 x 33"
"$HFC" id --data "$AS/grey.npy" --labels "$AS/labels.npy" --limit 30 "$AS/m28x28c1.bin" | grep -q '"dim":784,'
expect $? "id on 1 x 28 x 28 images"
"$HFC" --data "$AS/odd.npy" --labels "$AS/labels.npy" --limit 10 --radius 4,8 --png "$T/as-png" "$AS/m31x33c3.bin" >/dev/null &&
    "$HFC" --data "$AS/mnist" --limit 10 --radius 4 --png "$T/as-png1" "$AS/m28x28c1.bin" >/dev/null &&
    [ -s "$T/as-png/m31x33c3-r8-grid.png" ] && [ -s "$T/as-png/spectrum-r4.png" ] && [ -s "$T/as-png1/m28x28c1-r4-grid.png" ]
expect $? "--png at 31 x 33 and on grey 28 x 28 images"
for args in "--shard 1/2" "--bn-stats batch --bn-batch 10" "--rescale max"; do
    # shellcheck disable=SC2086
    "$HFC" --data "$AS/up64.npy" --labels "$AS/labels.npy" --limit 40 --radius 4 $args "$AS/m64x64c3.bin" >/dev/null
    expect $? "64 x 64 with $args"
done
"$HFC" --data "$AS/up64.npy" --labels "$AS/labels.npy" --radius 4,8 -j1 -b 7 "$AS/m64x64c3.bin" |
    sed 's/"seconds":[0-9.]*//' >"$T/as-j1" && [ -s "$T/as-j1" ] &&
    "$HFC" --data "$AS/up64.npy" --labels "$AS/labels.npy" --radius 4,8 -j2 -b 64 "$AS/m64x64c3.bin" |
    sed 's/"seconds":[0-9.]*//' | cmp -s - "$T/as-j1"
expect $? "64 x 64: the same report for any --threads and --batch-size"

# hostile inputs of the new sources
"$PY" - "$AS" <<'PYEOF'
import gzip, os, shutil, sys
import numpy as np
d = sys.argv[1]
png = sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(d, "png")) for f in fs)
jpg = sorted(os.path.join(r, f) for r, _, fs in os.walk(os.path.join(d, "jpeg")) for f in fs)
def tree(name, src):
    dst = os.path.join(d, name)
    shutil.copytree(os.path.join(d, src), dst)
    return dst
b = tree("badpng", "png")
first = sorted(os.listdir(os.path.join(b, "cat")))[0]
raw = bytearray(open(os.path.join(b, "cat", first), "rb").read())
raw[60:80] = b"\0" * 20
open(os.path.join(b, "cat", first), "wb").write(raw)
b = tree("badjpeg", "jpeg")
first = sorted(os.listdir(os.path.join(b, "dog")))[0]
raw = open(os.path.join(b, "dog", first), "rb").read()
open(os.path.join(b, "dog", first), "wb").write(raw[: len(raw) // 2])
b = tree("emptyclass", "png")
os.makedirs(os.path.join(b, "zebra"))
open(os.path.join(b, "zebra", "notes.txt"), "w").write("no images\n")
os.makedirs(os.path.join(d, "noclasses"))
open(os.path.join(d, "noclasses", "a.png"), "wb").write(open(png[0], "rb").read())
b = tree("mixedsizes", "png")
from PIL import Image
Image.new("RGB", (40, 32)).save(os.path.join(b, "ship", "zz-wide.png"))
b = tree("bmp", "png")
Image.new("RGB", (32, 32)).save(os.path.join(b, "ship", "zz.bmp"))
raw = open(os.path.join(d, "raw-images-idx3-ubyte"), "rb").read()
open(os.path.join(d, "short-images-idx3-ubyte"), "wb").write(raw[:-10])
open(os.path.join(d, "short-labels-idx1-ubyte"), "wb").write(open(os.path.join(d, "raw-labels-idx1-ubyte"), "rb").read())
open(os.path.join(d, "type-images-idx3-ubyte"), "wb").write(raw[:2] + b"\x0d" + raw[3:])
open(os.path.join(d, "type-labels-idx1-ubyte"), "wb").write(open(os.path.join(d, "raw-labels-idx1-ubyte"), "rb").read())
lab = open(os.path.join(d, "raw-labels-idx1-ubyte"), "rb").read()
open(os.path.join(d, "few-images-idx3-ubyte"), "wb").write(raw)
open(os.path.join(d, "few-labels-idx1-ubyte"), "wb").write(lab[:4] + (int.from_bytes(lab[4:8], "big") - 1).to_bytes(4, "big") + lab[8:-1])
gz = open(os.path.join(d, "mnist", "t10k-images-idx3-ubyte.gz"), "rb").read()
os.makedirs(os.path.join(d, "badgz"))
open(os.path.join(d, "badgz", "t10k-images-idx3-ubyte.gz"), "wb").write(gz[: len(gz) // 2])
shutil.copy(os.path.join(d, "mnist", "t10k-labels-idx1-ubyte.gz"), os.path.join(d, "badgz"))
PYEOF
errors sources
"$HFC" --data "$AS/badpng" --skip-bad-images --radius 4 "$AS/m32x32c3.bin" >"$T/skip.json" 2>"$T/skip.err" &&
    grep -q '"skipped_images":1' "$T/skip.json" && grep -q 'warning: 1 image could not be read' "$T/skip.err" &&
    [ "$(grep -o '"images":[0-9]*' "$T/skip.json" | head -1)" = "\"images\":$(($(find "$AS/png" -type f | wc -l) - 1))" ]
expect $? "--skip-bad-images leaves the damaged PNG out, says so on stderr and in the report"

section "training set, CIFAR-100, checkpoint series"
mkdir -p "$T/c10"
for i in 1 2 3 4 5; do head -c $((3073 * (i + 1))) "$TINY" >"$T/c10/data_batch_$i.bin"; done
cp "$TINY" "$T/c10/test_batch.bin"
"$HFC" --data "$T/c10" --set train --radius 4 "$MODEL" >"$T/train.jsonl" &&
    "$PY" tools/reference.py --data "$T/c10" --set train --radius 4 "$MODEL" >"$T/train-ref.jsonl" &&
    "$PY" - "$T/train.jsonl" "$T/train-ref.jsonl" <<'PYEOF'
import json, sys
a, b = (json.loads(open(p).readline()) for p in sys.argv[1:3])
assert a["images"] == 2 + 3 + 4 + 5 + 6 == b["images"], (a["images"], b["images"])
assert a["set"] == "train" and a["dataset"] == "cifar10" and "data_batch_1.bin ... data_batch_5.bin" in a["data"], a
assert a["correct"] == b["correct"], (a["correct"], b["correct"])
PYEOF
expect $? "--set train reads data_batch_1..5.bin in order (20 images); counts equal tools/reference.py's"
printf '\x0b' | dd of="$T/c10/data_batch_3.bin" bs=1 seek=3073 conv=notrunc status=none
expect_error 3 "data_batch_3.bin: label 11 at byte offset 3073" -- --data "$T/c10" --set train "$MODEL"
expect_error 1 "--set train needs --data to be a directory" -- --data "$TINY" --set train "$MODEL"
expect_error 1 "--set: 'validation' is not test or train" -- --set validation "$MODEL"
expect_error 1 "--dataset: 'imagenet' is not cifar10, cifar100, mnist, folder or cifar10-c" -- --dataset imagenet "$MODEL"
C100=$REF/tiny100
"$HFC" --dataset cifar100 --data "$C100" --radius 4,8 "$REF/vgg100.bin" >"$T/c100.jsonl" &&
    "$PY" tools/reference.py --dataset cifar100 --data "$C100" --radius 4,8 "$REF/vgg100.bin" >"$T/c100-ref.jsonl" &&
    "$PY" - "$T/c100.jsonl" "$T/c100-ref.jsonl" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 2
for x, y in zip(a, b):
    assert x["images"] == 120 and x["dataset"] == "cifar100", x
    assert x["correct"] == y["correct"], (x["correct"], y["correct"])
    pc = x["per_class"]
    assert list(pc) == ["fine%02d" % i for i in range(100)], list(pc)[:3]
    want = [sum(1 for i in range(120) if i * 7 % 100 == c) for c in range(100)]  # gen_refs.py's labels
    assert [pc["fine%02d" % c]["images"] for c in range(100)] == want
PYEOF
expect $? "--dataset cifar100: 100 fine classes named from fine_label_names.txt; counts equal tools/reference.py's"
"$HFC" --dataset cifar100 --data "$C100" --set train --radius 4 "$REF/vgg100.bin" | grep -q '"images":60,'
expect $? "--dataset cifar100 --set train reads train.bin"
expect_error 3 "it is a whole number of 3074-byte cifar100 records: use --dataset cifar100" -- --data "$C100/test.bin" "$MODEL"
expect_error 2 "it has test.bin: use --dataset cifar100" -- --data "$C100" "$MODEL"
expect_error 3 "not a multiple of 3074" -- --dataset cifar100 --data "$TINY" "$REF/vgg100.bin"
expect_error 4 "model has 10 classes; cifar100 has 100" -- --dataset cifar100 --data "$C100" "$MODEL"
cp "$C100/test.bin" "$T/c100-bad.bin"
printf '\x15' | dd of="$T/c100-bad.bin" bs=1 seek=3074 conv=notrunc status=none
expect_error 3 "coarse label 21 at byte offset 3074" -- --dataset cifar100 --data "$T/c100-bad.bin" "$REF/vgg100.bin"
# A checkpoint series: copies of a model whose metadata names an epoch.
"$PY" - "$MODEL" "$T/series" <<'PYEOF'
import hashlib, json, os, struct, sys
raw = open(sys.argv[1], "rb").read()[:-32]  # version 3: without its checksum
hlen = struct.unpack("<Q", raw[16:24])[0]
head = json.loads(raw[24:24 + hlen])
os.makedirs(sys.argv[2], exist_ok=True)
for e in (1, 5, 10):
    head["metadata"] = {"epoch": e}
    text = json.dumps(head, separators=(",", ":")).encode()
    assert len(text) <= hlen
    text += b" " * (hlen - len(text))  # same length: the data section stays where it is
    body = raw[:24] + text + raw[24 + hlen:]
    open(os.path.join(sys.argv[2], "ck-e%d.bin" % e), "wb").write(body + hashlib.sha256(body).digest())
PYEOF
"$HFC" --data "$TINY" --radius 4,8 --png "$T/series/png" "$T"/series/ck-e*.bin >/dev/null &&
    [ -s "$T/series/png/accuracy-vs-epoch.png" ]
expect $? "--png on checkpoints whose metadata has an epoch draws accuracy-vs-epoch.png"

section "the paper's protocol: batch-statistics BN, max rescaling, kernel smoothing"
PROTO="--bn-stats batch --bn-batch 10 --rescale max --smooth 0.5"
"$HFC" --data "$TINY" --radius 0,4,8 $PROTO -j 1 -b 256 "$MODEL" "$REF/vgg.bin" >"$T/p1.jsonl" &&
    "$HFC" --data "$TINY" --radius 0,4,8 $PROTO -j 2 -b 7 "$MODEL" "$REF/vgg.bin" >"$T/p2.jsonl" &&
    same_report "$T/p1.jsonl" "$T/p2.jsonl"
expect $? "--bn-stats batch: 1 thread/batch 256 and 2 threads/batch 7 give byte-identical JSON"
for args in "--bn-stats batch --bn-batch 10" "--rescale max" "--smooth 1" "$PROTO"; do
    for m in "$MODEL" "$REF/zoo-mobilenetv2.bin"; do
        "$HFC" --data "$TINY" --radius 0,4,8 $args "$m" >"$T/po" &&
            "$PY" tools/reference.py --data "$TINY" --radius 0,4,8 $args "$m" >"$T/pr" &&
            "$PY" - "$T/po" "$T/pr" "$args" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 3 and all(x["correct"] == y["correct"] for x, y in zip(a, b)), (a, b)
x = a[0]
args = sys.argv[3]
assert x["bn_stats"] == ("batch" if "batch" in args else "running"), x
assert x["rescale"] == ("max" if "max" in args else "none") and ("rescale_skipped" in x) == ("max" in args), x
assert x["smooth"] == (1 if "--smooth 1" in args else 0.5 if "0.5" in args else 0), x
PYEOF
        expect $? "$args, $(basename "$m"): counts equal tools/reference.py's; the JSON records the protocol"
    done
done
for K in 0 1 2 3; do "$HFC" --data "$TINY" --radius 4 --rescale max --bn-stats batch --bn-batch 10 --shard $K/4 "$MODEL" >"$T/ps-$K.jsonl"; done
"$HFC" --data "$TINY" --radius 4 --rescale max --bn-stats batch --bn-batch 10 "$MODEL" >"$T/ps.jsonl" &&
    "$HFC" merge "$T"/ps-*.jsonl >"$T/ps-merged.jsonl" && same_report "$T/ps-merged.jsonl" "$T/ps.jsonl"
expect $? "shards of a --bn-stats batch --rescale max run merge to the single run"
"$PY" - "$T/pool-first.bin" <<'PYEOF'
import sys; sys.path.insert(0, "tools")
import torch.nn as nn, export_pytorch
m = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
export_pytorch.export(m, sys.argv[1], mean=(0, 0, 0), std=(1, 1, 1))
PYEOF
expect_error 1 "--smooth: the first layer is avgpool2d, not a conv" -- --data "$TINY" --smooth 1 "$T/pool-first.bin"
expect_error 1 "--bn-batch" -- --bn-stats batch --bn-batch 0 "$MODEL"
expect_error 1 "--bn-stats: 'moving' is not running or batch" -- --bn-stats moving "$MODEL"
expect_error 1 "--rescale: 'min' is not none or max" -- --rescale min "$MODEL"
expect_error 1 "--smooth: '-1' is not a number in 0..100" -- --smooth -1 "$MODEL"
expect_error 1 "inside a batch of --bn-batch 10" -- --data "$TINY" --bn-stats batch --bn-batch 10 --shard 1/3 "$MODEL"

section "attack: FGSM and PGD against tools/reference.py attack (PyTorch autograd)"
for args in "--method fgsm --eps 0.01,0.03" "--method pgd --eps 0.02 --steps 3" \
    "--method pgd --eps 0.02 --steps 2 --step-size 0.01 --random-start --seed 7 --radius 4"; do
    for m in "$MODEL" "$REF/zoo-mobilenetv2.bin" "$REF/zoo-senet.bin"; do
        "$HFC" attack --data "$TINY" $args "$m" >"$T/ao" &&
            "$PY" tools/reference.py attack --data "$TINY" $args "$m" >"$T/ar" &&
            "$PY" - "$T/ao" "$T/ar" <<'PYEOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) and a, (a, b)
for x, y in zip(a, b):
    for k in ("attack", "eps", "steps", "step_size", "random_start", "images"):
        assert x[k] == y[k], (k, x, y)
    assert x["correct"] == y["correct"], (x["correct"], y["correct"])
    assert all(abs(x["accuracy"][k] - v / x["images"]) < 1e-12 for k, v in x["correct"].items())
PYEOF
        expect $? "attack $args, $(basename "$m"): the same counts as the PyTorch reference (40 images)"
    done
done
for K in 0 1; do "$HFC" attack --data "$TINY" --method fgsm --eps 0.01 --shard $K/2 "$MODEL" >"$T/at-$K.jsonl"; done
"$HFC" attack --data "$TINY" --method fgsm --eps 0.01 "$MODEL" >"$T/at.jsonl" &&
    "$HFC" merge "$T"/at-*.jsonl >"$T/at-merged.jsonl" && same_report "$T/at-merged.jsonl" "$T/at.jsonl"
expect $? "attack shards merge to the single run"
expect_error 1 "--eps: '1.5' is not a comma-separated list of numbers in 0..1" -- attack --eps 1.5 "$MODEL"
expect_error 1 "--eps" -- attack --eps -0.1 "$MODEL"
expect_error 1 "--steps" -- attack --steps 0 "$MODEL"
expect_error 1 "--method: 'cw' is not fgsm or pgd" -- attack --method cw "$MODEL"
expect_error 1 "FGSM is one step" -- attack --method fgsm --steps 5 "$MODEL"
expect_error 1 "are for 'hfc-eval attack'" -- --eps 0.03 "$MODEL"
expect_error 1 "not with --rescale" -- attack --rescale max "$MODEL"

section "margin: DeepFool along DCT subspaces against tools/reference.py margin"
for m in "$REF/zoo-mobilenetv2.bin" "$MODEL"; do
    "$HFC" margin --data "$TINY" --limit 8 --stride 8 "$m" >"$T/mo" &&
        "$PY" tools/reference.py margin --data "$TINY" --limit 8 --stride 8 "$m" >"$T/mr" &&
        "$PY" - "$T/mo" "$T/mr" <<'PYEOF'
import json, sys
a, b = (json.loads(open(p).readline()) for p in sys.argv[1:3])
assert a["experiment"] == "margin" and a["block"] == 8 and a["stride"] == 8 and a["images"] == 8, a
sa, sb = a["subspaces"], b["subspaces"]
assert [s["offset"] for s in sa] == [0, 8, 16, 24] == [s["offset"] for s in sb]
for x, y in zip(sa, sb):
    assert x["not_fooled"] == y["not_fooled"] and len(x["margins"]) == 8, (x, y)
    assert abs(x["median"] - y["median"]) <= 0.01 * y["median"], (x["median"], y["median"])
    assert x["q1"] <= x["median"] <= x["q3"], x
PYEOF
    expect $? "margin, $(basename "$m"): every subspace's median within 1% of the PyTorch reference's"
done
# Items leave the batch as they finish and others take their places: an
# image's margins must not depend on its neighbours, the batch or threads.
for a in "-b 8 -j 1" "-b 24 -j 2" "-b 256 -j 2"; do
    "$HFC" margin --data "$TINY" --limit 20 --stride 8 $a "$MODEL" | sed 's/"seconds":[0-9.e+-]*//'
done | uniq | wc -l | grep -qx 1
expect $? "margin: the same margins with --batch-size 8, 24 or 256 and 1 or 2 threads"
"$HFC" margin --data "$TINY" --limit 4 --block 16 --stride 16 --max-iter 3 "$MODEL" |
    "$PY" -c 'import json,sys; d=json.load(sys.stdin); assert len(d["subspaces"]) == 2 and d["max_iter"] == 3 and d["images"] == 4, d'
expect $? "margin: --block 16 --stride 16 gives 2 subspaces; --limit and --max-iter recorded"
"$HFC" margin --data "$TINY" --limit 4 --stride 8 --max-iter 5 --png "$T/mpng" "$MODEL" "$REF/vgg.bin" >/dev/null &&
    "$PY" - "$T/mpng/margin.png" <<'PYEOF'
import struct, sys
head = open(sys.argv[1], "rb").read(24)
assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (730, 420), head
PYEOF
expect $? "margin --png DIR draws DIR/margin.png (730x420)"
expect_error 1 "--block must be in 1..32 (the images' shorter side)" -- margin --data "$TINY" --block 33 "$MODEL"
expect_error 1 "--subspace: 'fourier' is not dct" -- margin --subspace fourier "$MODEL"
expect_error 1 "not with --bn-stats batch" -- margin --bn-stats batch "$MODEL"
expect_error 1 "are for 'hfc-eval margin'" -- --block 8 "$MODEL"

section "pictures (libpng)"
counted build/test_png "$MODEL" "$TINY" "$T/png"
"$HFC" compare --data "$TINY" --radius 4,30 --png "$T/pics" --png-images 5,0 "$MODEL" "$REF/vgg.bin" >/dev/null &&
    [ "$(cd "$T/pics" && LC_ALL=C ls | tr '\n' ' ')" = "accuracy-vs-radius.png preact-kernels.png preact-r30-grid.png preact-r4-grid.png spectrum-r30.png spectrum-r4.png vgg-kernels.png vgg-r30-grid.png vgg-r4-grid.png " ]
expect $? "--png DIR writes grids, spectra, kernels and the plot for 2 models x 2 radii"
"$PY" - "$T/pics/vgg-r4-grid.png" <<'EOF'
import struct, sys
head = open(sys.argv[1], "rb").read(24)
assert head[:8] == b"\x89PNG\r\n\x1a\n", head
w, h = struct.unpack(">II", head[16:24])
assert (w, h) == (530, 66 + 2 * 156 + 10), (w, h)  # --png-images 5,0: two rows of 156
EOF
expect $? "--png-images picks the grid's rows (a 2-row grid)"

section "bad inputs: one line on stderr, documented exit code"
head -c 3000 "$TINY" >"$T/short.cifar"
: >"$T/empty.cifar"
cp "$TINY" "$T/label.cifar"
printf '\x0c' | dd of="$T/label.cifar" bs=1 seek=6146 conv=notrunc status=none
mkdir -p "$T/nobatches"
errors bad-inputs
"$PY" tests/make_bad_models.py "$MODEL" "$T/bad"
errors bad-models

section "damaged inputs are refused, never evaluated (model checksum, strict JSON, merge checks)"
FLIPS=300
[ "${HFC_FULL:-0}" = 1 ] && FLIPS=10000
for m in data/models/*.bin data/models/paper32/*.bin; do
    counted build/test_flips "$m" $FLIPS
done
# Version 1-2 files (no checksum) still load, with one warning line, to the
# same report; tools/export_pytorch.py --upgrade makes them version 3 again.
"$PY" - "$MODEL" "$T/legacy-v2.bin" <<'PYEOF'
import struct, sys
raw = open(sys.argv[1], "rb").read()
assert struct.unpack_from("<I", raw, 8)[0] == 3
open(sys.argv[2], "wb").write(raw[:8] + struct.pack("<I", 2) + raw[12:-32])
PYEOF
"$HFC" --data "$TINY" --radius 4 "$T/legacy-v2.bin" >"$T/legacy.jsonl" 2>"$T/legacy.err" &&
    "$HFC" --data "$TINY" --radius 4 "$MODEL" >"$T/current.jsonl" &&
    [ "$(wc -l <"$T/legacy.err")" = 1 ] &&
    grep -q "^hfc-eval: $T/legacy-v2.bin: warning: format version 2 carries no checksum" "$T/legacy.err" &&
    cmp -s <(sed 's/"seconds":[0-9.]*//; s/"model[^,]*,//g' "$T/legacy.jsonl") \
        <(sed 's/"seconds":[0-9.]*//; s/"model[^,]*,//g' "$T/current.jsonl")
expect $? "a version-2 file loads with one warning line and gives the same report"
"$PY" tools/export_pytorch.py --upgrade "$T/legacy-v2.bin" "$T/upgraded.bin" >/dev/null &&
    cmp -s "$T/upgraded.bin" "$MODEL"
expect $? "export_pytorch.py --upgrade turns it back into the version-3 file, byte for byte"
# merge: single-bit flips of two shards, then reports no run can print.
for K in 0 1; do "$HFC" --data "$TINY" --radius 4,8 --rescale max --shard $K/2 "$MODEL" >"$T/fl-$K.jsonl"; done
MFLIPS=300
[ "${HFC_FULL:-0}" = 1 ] && MFLIPS=3000
counted "$PY" tests/flip_reports.py "$HFC" $MFLIPS "$T/fl-0.jsonl" "$T/fl-1.jsonl"
"$PY" - "$T" <<'PYEOF'
import json, sys
t = sys.argv[1]
first = open(f"{t}/fl-0.jsonl").readline()
r = json.loads(first)
def put(name, text):
    open(f"{t}/{name}.jsonl", "w").write(text + "\n")
o = json.loads(first); o["correct"]["original"] = o["images"] + 1
o["accuracy"]["original"] = o["correct"]["original"] / o["images"]
put("too-many", json.dumps(o, separators=(",", ":")))
o = json.loads(first); cls = next(iter(o["per_class"])); o["per_class"][cls]["images"] = -3
put("negative", json.dumps(o, separators=(",", ":")))
o = json.loads(first); o["accuracy"]["low"] = 1.0 if o["accuracy"]["low"] != 1.0 else 0.0
put("accuracy-edited", json.dumps(o, separators=(",", ":")))
put("dup-key", first.rstrip("\n")[:-1] + ',"radius":4}')
PYEOF
{ head -1 "$T/fl-0.jsonl" | tr -d '\n'; printf '\x17\n'; } >"$T/ctrl.jsonl"
errors merge-damaged
# FIFOs are refused at once, never waited on; so are other non-regular files.
mkfifo "$T/fifo"
for args in "--data $TINY $T/fifo" "merge $T/fifo" "attack --data $TINY $T/fifo" "--data $T/fifo $MODEL"; do
    # shellcheck disable=SC2086
    timeout 10 "$HFC" $args >/dev/null 2>"$T/fifo.err"
    rc=$?
    [ $rc = 2 ] && grep -q "fifo: not a regular file" "$T/fifo.err"
    expect $? "hfc-eval $args: exit 2 'not a regular file', no wait for a writer (exit $rc)"
done
# A closed stdout is an error only when something was to be written there.
"$HFC" --data "$TINY" --radius 4 -o "$T/closed.jsonl" "$MODEL" >&- && "$PY" -c '
import json, sys; assert json.loads(open(sys.argv[1]).readline())["images"] == 40' "$T/closed.jsonl"
expect $? "-o FILE with stdout closed: exit 0 and the report in FILE"
"$HFC" merge -o "$T/closed-merge.jsonl" "$T/fl-0.jsonl" "$T/fl-1.jsonl" >&- && [ -s "$T/closed-merge.jsonl" ]
expect $? "merge -o FILE with stdout closed: exit 0"
"$HFC" --data "$TINY" --radius 4 -o "$T/closed2.jsonl" --png "$T/closed-png" "$MODEL" >&- &&
    ls "$T/closed-png" | grep -q grid
expect $? "-o FILE --png DIR with stdout closed: exit 0, pictures drawn"
"$HFC" --data "$TINY" --radius 4 "$MODEL" >&- 2>"$T/closed.err"
[ $? = 2 ] && grep -q "^hfc-eval: stdout: write failed: Bad file descriptor" "$T/closed.err"
expect $? "no -o and stdout closed: exit 2, stdout named"
# Lists refuse a value given twice; short options take attached values.
errors arguments
"$HFC" --data "$TINY" -r4 -j1 -b7 -n20 "$MODEL" >"$T/attached.jsonl" &&
    "$HFC" --data="$TINY" --radius=4 --threads=1 --batch-size=7 --limit=20 "$MODEL" >"$T/equals.jsonl" &&
    "$HFC" --data "$TINY" -r 4 -j 1 -b 7 -n 20 "$MODEL" >"$T/separate.jsonl" &&
    same_report "$T/attached.jsonl" "$T/separate.jsonl" && same_report "$T/equals.jsonl" "$T/separate.jsonl"
expect $? "-r4 -j1 and --radius=4 --threads=1 read as -r 4 -j 1"

section "every subcommand's outputs unchanged (tests/golden.sh vs tests/golden.sha256)"
# recorded with the AVX-512 kernels; the AVX2 ones give the same floats
for isa in $TILED_ISAS; do
    HFC_ISA=$isa bash tests/golden.sh "$HFC" build/golden >"$T/golden.txt" &&
        diff tests/golden.sha256 "$T/golden.txt" >"$T/golden.diff"
    expect $? "HFC_ISA=$isa: $(wc -l <tests/golden.sha256) outputs (JSON without seconds, tables, PNGs) byte-identical to the recorded ones$(head -c 400 "$T/golden.diff" | tr '\n' ' ')"
done
[ -n "$TILED_ISAS" ] || echo "SKIP: tests/golden.sha256 holds the tiled kernels' outputs; this CPU has neither AVX2 nor AVX-512"

section "bench: ONNX Runtime held to AVX2 (bench/avx2_only.c hides AVX-512 from CPUID)"
if grep -qw avx512f /proc/cpuinfo && grep -qw cpuid_fault /proc/cpuinfo; then
    cat >"$T/cpuid.c" <<'EOF2'
#include <cpuid.h>
#include <stdio.h>
int main(void)
{
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    printf("avx2 %u avx512f %u avx512bw %u\n", b >> 5 & 1, b >> 16 & 1, b >> 30 & 1);
    return 0;
}
EOF2
    make -s build/avx2_only.so && cc -O1 "$T/cpuid.c" -o "$T/cpuid" &&
        [ "$("$T/cpuid")" = "avx2 1 avx512f 1 avx512bw 1" ] &&
        [ "$(LD_PRELOAD=build/avx2_only.so "$T/cpuid")" = "avx2 1 avx512f 0 avx512bw 0" ] &&
        { ! command -v node >/dev/null ||
            LD_PRELOAD=build/avx2_only.so node --disable-wasm-trap-handler -e 'process.exit(0)'; }
    expect $? "build/avx2_only.so: CPUID leaf 7 shows AVX2 and no AVX-512 to the program it is preloaded into; node (where installed) runs under it"
else
    echo "SKIP: avx2_only.so needs a CPU with AVX-512 and CPUID faulting (cpuid_fault)"
fi

section "SHA-256 (the models' model_sha256)"
counted build/test_sha

section "sanitizers (ASan + UBSan) and valgrind"
counted build/asan/test_sha
counted build/asan/test_split "$REF/split.ref" "$REF/masks.ref"
counted build/asan/test_png "$MODEL" "$TINY" "$T/png-asan"
for f in preact misc-f16; do
    counted build/asan/test_engine "$f" "$REF/$f.bin" "$REF/$f.in" "$REF/$f.out"
done
for f in misc zoo-spellings zoo-shufflenetv2; do
    counted build/asan/test_grad "$f" "$REF/$f.bin" "$REF/$f.in" "$REF/$f.grad"
done
build/asan/hfc-eval --data "$TINY" --radius 0,4,30 -b 7 -j 2 "$REF/vgg.bin" >/dev/null
expect $? "ASan/UBSan build: an end-to-end run is clean"
build/asan/hfc-eval --data "$TINY" "$T/bad/cycle.bin" 2>/dev/null
[ $? = 4 ]
expect $? "ASan/UBSan build: an error path is clean (exit 4, no leak report)"
if command -v valgrind >/dev/null; then
    # valgrind does not know AVX-512: im2col + SGEMM only.
    HFC_CONV=gemm valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        "$HFC" --data "$TINY" --limit 8 --radius 4,30 -j 2 "$REF/misc.bin" >/dev/null
    expect $? "valgrind: a small end-to-end run has no errors and no leaks"
else
    echo "SKIP: valgrind not installed"
fi

section "torchvision's architectures by both conversion routes (#26)"
TV_DATA=${HFC_DATA:-../shared/cifar-10-batches-bin}/test_batch.bin
[ -f "$TV_DATA" ] || TV_DATA=$TINY
if "$PY" -c 'import torchvision' 2>/dev/null; then
    "$PY" -c 'import sys, numpy as np
r = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 3073)[:60]
np.save(sys.argv[2] + "/tv-x.npy", r[:, 1:].reshape(-1, 3, 32, 32)); np.save(sys.argv[2] + "/tv-y.npy", r[:, 0].astype(np.int64))' "$TV_DATA" "$T"
    # every architecture that runs at 32 x 32 (ConvNeXt as torchvision's own class at a quarter
    # of convnext_tiny's width); the five largest (about a minute and a half) with HFC_FULL=1
    big=""
    [ "${HFC_FULL:-0}" = 1 ] && big="resnet50 resnext50_32x4d wide_resnet50_2 vgg11_bn convnext_tiny"
    # shellcheck disable=SC2086
    counted "$PY" tests/torchvision_zoo.py "$HFC" "$T/tv-x.npy" "$T/tv-y.npy" "$T/tv" resnet18 \
        mobilenet_v2 mobilenet_v3_small mobilenet_v3_large mnasnet0_5 shufflenet_v2_x1_0 \
        regnet_x_400mf regnet_y_400mf squeezenet1_1 googlenet googlenet+transform_input densenet121 \
        efficientnet_b0 convnext_slim $big
else
    echo "SKIP: torchvision architectures: python3-torchvision is not installed"
fi
# a converter failure is one line naming the operation and the node, exit 1, no traceback
"$PY" - "$T" <<'PYEOF'
import sys, torch, torch.nn as nn
class M(nn.Module):
    def forward(self, x):
        return torch.sin(x).flatten(1)
torch.onnx.export(M(), torch.zeros(1, 3, 4, 4), sys.argv[1] + "/unsupported.onnx", opset_version=13)
torch.save(M(), sys.argv[1] + "/unsupported.pt")
PYEOF
"$PY" tools/onnx_to_hfc.py "$T/unsupported.onnx" "$T/u.bin" --mean 0,0,0 --std 1,1,1 2>"$T/u.err"
rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$T/u.err")" = 1 ] && grep -q 'unsupported operation' "$T/u.err" && ! grep -q Traceback "$T/u.err"
expect $? "onnx_to_hfc.py on an unsupported op: exit 1, one line: $(cat "$T/u.err")"
"$PY" -c 'import sys, torch; sys.path.insert(0, "tools"); import export_pytorch as e
class M(torch.nn.Module):
    def forward(self, x):
        return torch.sin(x).flatten(1)
try:
    e.export(M(), sys.argv[1], mean=[0, 0, 0], std=[1, 1, 1], input_shape=(3, 4, 4))
except e.ExportError as err:
    print(err); sys.exit(1)' "$T/u2.bin" >"$T/u2.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q 'unsupported operation sin' "$T/u2.out" && ! grep -q Traceback "$T/u2.out"
expect $? "export_pytorch.py on an unsupported op: ExportError naming it: $(cat "$T/u2.out")"
# layouts and resizes neither converter can run: one line each, by both routes
"$PY" - "$T" <<'PYEOF' >"$T/layout.out" 2>"$T/layout.err"
import sys, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, "tools"); import export_pytorch as e
class M(nn.Module):
    def __init__(self, kind):
        super().__init__(); self.kind, self.conv = kind, nn.Conv2d(4, 4, 1)
    def forward(self, x):
        if self.kind == "conv-on-nhwc":  # a conv reading a channels-last tensor
            return self.conv(x.permute(0, 2, 3, 1).permute(0, 3, 1, 2).permute(0, 2, 3, 1)).flatten(1)
        if self.kind == "permute-hw":
            return x.permute(0, 1, 3, 2).flatten(1)
        return F.interpolate(x, scale_factor=2, mode=self.kind).flatten(1)
for kind, onnx_says, torch_says in (("conv-on-nhwc", "channels-last", "channels-last"),
                                    ("permute-hw", "Transpose", "permute"),
                                    ("nearest", "unsupported operation Resize", "interpolate"),
                                    ("bilinear", "unsupported operation Resize", "interpolate")):
    torch.onnx.export(M(kind), torch.zeros(1, 4, 4, 4), f"{sys.argv[1]}/{kind}.onnx", opset_version=13)
    try:
        e.export(M(kind), sys.argv[1] + "/x.bin", mean=[0] * 4, std=[1] * 4, input_shape=(4, 4, 4))
        print(f"FAIL: {kind}: the PyTorch route exported it")
    except e.ExportError as err:
        print(f"{'PASS' if torch_says in str(err) else 'FAIL'}: {kind}: export_pytorch.py: {err}")
    print(f"CASE {kind} {onnx_says}")
PYEOF
[ "$(grep -c '^CASE' "$T/layout.out")" = 4 ]
expect $? "four unsupported layouts and resizes exported for both converters"
while read -r word kind says; do
    case $word in
    CASE)
        "$PY" tools/onnx_to_hfc.py "$T/$kind.onnx" "$T/u.bin" --mean 0,0,0,0 --std 1,1,1,1 2>"$T/u.err"
        rc=$?
        [ $rc = 1 ] && [ "$(wc -l <"$T/u.err")" = 1 ] && grep -q "$says" "$T/u.err" && ! grep -q Traceback "$T/u.err"
        expect $? "$kind: onnx_to_hfc.py: exit 1, one line: $(cat "$T/u.err")" ;;
    PASS:) expect 0 "$kind $says" ;;
    *) expect 1 "$word $kind $says" ;;
    esac
done <"$T/layout.out"

section "fuzzing smoke run (libFuzzer)"
if make -s fuzz >/dev/null 2>&1; then
    for h in model cifar args npy idx image npz; do
        line=$(tests/fuzz/run.sh "${HFC_FUZZ_SECONDS:-4}" $h)
        expect $? "$line"
    done
else
    echo "SKIP: clang with libFuzzer is not available"
fi

section "masks (disc, square, gaussian, band) vs tools/reference.py"
DATA_M=${HFC_DATA:-../shared/cifar-10-batches-bin}
MASK_MODEL=data/models/preact20-bn.bin
[ -f "$DATA_M/test_batch.bin" ] || { DATA_M=$TINY; MASK_MODEL=$MODEL; }
for args in "--mask disc --radius 4,8" "--mask square --radius 4,9" "--mask gaussian --radius 2,5" \
    "--radius 0:4,4:8,8:16" "--mask band --radius 2:6"; do
    # shellcheck disable=SC2086
    "$HFC" --data "$DATA_M" --limit 300 $args "$MASK_MODEL" | jq -c '[.radius, .mask, .correct]' >"$T/m-ours" &&
        "$PY" tools/reference.py --data "$DATA_M" --limit 300 $args "$MASK_MODEL" |
        jq -c '[.radius, .mask, .correct]' >"$T/m-theirs" && [ -s "$T/m-ours" ] &&
        cmp -s "$T/m-ours" "$T/m-theirs"
    expect $? "$args: radius, mask and counts equal the reference's: $(tr '\n' ' ' <"$T/m-ours" | cut -c1-160)"
done
"$HFC" --data "$TINY" --mask gaussian --radius 3 --png "$T/mpng" "$MODEL" >/dev/null &&
    "$HFC" --data "$TINY" --radius 2:6 --png "$T/mpng" "$MODEL" >/dev/null &&
    [ -s "$T/mpng/spectrum-gaussian-r3.png" ] && [ -s "$T/mpng/preact-gaussian-r3-grid.png" ] &&
    [ -s "$T/mpng/spectrum-band-r2-6.png" ]
expect $? "--png names pictures by mask: spectrum-gaussian-r3.png, preact-gaussian-r3-grid.png, spectrum-band-r2-6.png"
expect_error 1 "unknown mask 'hexagon'" -- --mask hexagon "$MODEL"
expect_error 1 "--radius 8:4: a band A:B needs 0 <= A < B" -- --radius 8:4 "$MODEL"
expect_error 1 "--radius 4:4: a band A:B needs 0 <= A < B" -- --radius 4:4 "$MODEL"
expect_error 1 "--mask gaussian: the radius (sigma) must be > 0" -- --mask gaussian --radius 0 "$MODEL"
expect_error 1 "--mask square takes single radii" -- --mask square --radius 2:4 "$MODEL"
expect_error 1 "--mask band: give each radius as A:B" -- --mask band --radius 4 "$MODEL"

section "heatmap: Fourier heat map vs tools/reference.py heatmap (numpy FFT basis, torch)"
"$HFC" heatmap --data "$DATA_M" --limit 20 --eps 2 --seed 7 --png "$T/hm" "$MASK_MODEL" >"$T/h-ours" &&
    "$PY" tools/reference.py heatmap --data "$DATA_M" --limit 20 --eps 2 --seed 7 "$MASK_MODEL" >"$T/h-theirs" &&
    msg=$("$PY" - "$T/h-ours" "$T/h-theirs" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
n = a["images"]
diff = [abs(x - y) * n for ra, rb in zip(a["error"], b["error"]) for x, y in zip(ra, rb)]
cells = sum(d > 0.5 for d in diff)
mirror = all(a["error"][i][j] == a["error"][(32 - i) % 32][(32 - j) % 32] for i in range(32) for j in range(32))
print(f"{n} images, {len(diff)} cells, {cells} differ; mean error {sum(map(sum, a['error'])) / 1024:.3f}; "
      f"mirror cells equal: {mirror}")
sys.exit(0 if len(diff) == 1024 and cells == 0 and mirror and a["experiment"] == "heatmap"
         and a["clean_error"] == b["clean_error"] and a["seed"] == 7 and a["eps"] == 2 else 1)
EOF
) && [ -s "$T/hm/$(basename "$MASK_MODEL" .bin)-heatmap.png" ]
expect $? "heatmap equals the reference cell for cell and draws MODEL-heatmap.png: $msg"
"$HFC" heatmap --data "$TINY" --limit 7 --eps 1 -b 3 -j 1 "$MODEL" | jq -c .error >"$T/h1" &&
    "$HFC" heatmap --data "$TINY" --limit 7 --eps 1 -b 256 -j 2 "$MODEL" | jq -c .error >"$T/h2" &&
    cmp -s "$T/h1" "$T/h2"
expect $? "heatmap: the same map with --batch-size 3 --threads 1 and 256/2"
expect_error 1 "--eps: '-1' is not a number in 0..1000" -- heatmap --eps -1 "$MODEL"
expect_error 1 "heatmap takes --eps, --seed" -- heatmap --radius 4 "$MODEL"
expect_error 1 "heatmap takes --eps, --seed" -- heatmap --method fgsm "$MODEL"

section "id: TwoNN on known manifolds, and per layer vs tools/reference.py id (numpy, exact distances)"
counted build/test_id
"$HFC" id --data "$DATA_M" --limit 200 --version original,high --resamples 3 --seed 5 --png "$T/idp" \
    "$MASK_MODEL" >"$T/i-ours" &&
    layers=$(jq -r 'select(.version == "high") | .layer' "$T/i-ours" | paste -sd, -) &&
    "$PY" tools/reference.py id --data "$DATA_M" --limit 200 --version high --resamples 3 --seed 5 \
        --layers "$layers" "$MASK_MODEL" >"$T/i-theirs" &&
    msg=$("$PY" - "$T/i-ours" "$T/i-theirs" <<'EOF'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
theirs = [json.loads(l) for l in open(sys.argv[2])]
high = [o for o in ours if o["version"] == "high"]
worst = max(abs(a["id"] - b["id"]) / b["id"] for a, b in zip(high, theirs))
worst_sd = max(abs(a["sd"] - b["sd"]) / max(b["sd"], 1e-9) for a, b in zip(high, theirs))
ok = (len(high) == len(theirs) >= 3 and len(ours) == 2 * len(high) and worst < 1e-3 and worst_sd < 1e-2
      and all(a["layer"] == b["layer"] and a["points"] == b["points"] and a["dim"] == b["dim"]
              for a, b in zip(high, theirs))
      and [o["depth"] for o in high] == list(range(len(high))) and high[0]["layer"] == "input"
      and high[-1]["dim"] == 10 and high[0]["mask"] == {"kind": "disc", "radius": 4})
print(f"{len(high)} layers ({high[0]['layer']} .. {high[-1]['layer']}), largest relative difference: "
      f"id {worst:.1e}, sd {worst_sd:.1e}")
sys.exit(0 if ok else 1)
EOF
) && [ -s "$T/idp/id.png" ]
expect $? "id per block output equals the reference; id.png drawn: $msg"
"$HFC" id --data "$TINY" --limit 24 -b 5 -j 1 "$MODEL" | jq -c '[.id, .sd]' >"$T/i1" &&
    "$HFC" id --data "$TINY" --limit 24 -b 256 -j 2 "$MODEL" | jq -c '[.id, .sd]' >"$T/i2" &&
    cmp -s "$T/i1" "$T/i2" && [ "$(wc -l <"$T/i1")" -ge 3 ]
expect $? "id: the same estimates with --batch-size 5 --threads 1 and 256/2"
expect_error 1 "--limit 2: id needs at least 3 images" -- id --limit 2 "$MODEL"
expect_error 1 "--version: 'middle' is not a list of original, low and high" -- id --version middle "$MODEL"
expect_error 1 "id takes one --radius" -- id --radius 4,8 "$MODEL"
expect_error 1 "id takes --version" -- id --bn-stats batch "$MODEL"

section "training recipe (CPU smoke run)"
mkdir -p "$T/cifar"
for i in 1 2 3 4 5; do ln -s "$PWD/$TINY" "$T/cifar/data_batch_$i.bin"; done
ln -s "$PWD/$TINY" "$T/cifar/test_batch.bin"
"$PY" train/train.py --family preact --no-bn --epochs 1 --batch-size 20 --device cpu \
    --data "$T/cifar" --out "$T/smoke" >/dev/null 2>&1 &&
    "$HFC" --data "$TINY" --radius 4 "$T/smoke.bin" | grep -q '"images":40'
expect $? "train/train.py trains, writes OUT.bin, and hfc-eval runs it"
# the paper's other recipes (#29): adversarial training, mixup, dropout, shuffled labels
"$PY" train/train.py --family preact --bn --epochs 2 --batch-size 20 --device cpu --data "$T/cifar" \
    --adversarial pgd --eps 8/255 --steps 2 --step-size 2/255 --mixup 1 --dropout 0.2 --no-augment \
    --shuffle-labels 1 --save-every 1 --out "$T/adv" >/dev/null 2>&1 &&
    "$HFC" --data "$TINY" --radius 4 "$T/adv-epoch1.bin" | grep -q '"images":40' &&
    "$HFC" --data "$TINY" --radius 4 "$T/adv.bin" | grep -q '"images":40' &&
    jq -e '.adversarial.eps == 8/255 and .adversarial.steps == 2 and .mixup_alpha == 1 and
        .dropout == 0.2 and .shuffled_labels == 1 and .augmentation == null and
        (.command | test("--adversarial pgd"))' \
        "$T/adv.json" >/dev/null &&
    "$PY" - "$TINY" "$T/adv.labels.npy" <<'EOF2'
import sys, numpy as np
true = np.tile(np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 3073)[:, 0], 5)  # 5 batches
used = np.load(sys.argv[2])
sys.exit(0 if sorted(used) == sorted(true) and (used != true).mean() > 0.5 else 1)
EOF2
expect $? "train/train.py --adversarial pgd --mixup --dropout --no-augment --shuffle-labels 1 --save-every 1: a checkpoint per epoch hfc-eval runs, the recipe and command in OUT.json, the labels trained on (a permutation) in OUT.labels.npy"
out=$("$PY" - <<'EOF2' 2>&1
import sys, torch, torch.nn.functional as F
sys.path.insert(0, "train"); sys.path.insert(0, "tools")
import hfc_models, train
torch.manual_seed(0)
m = hfc_models.build("preact", bn=True).train()
x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
mean = torch.tensor(hfc_models.CIFAR10_MEAN).view(1, 3, 1, 1)
std = torch.tensor(hfc_models.CIFAR10_STD).view(1, 3, 1, 1)
norm = lambda v: (v - mean) / std
eps, step = 8 / 255, 2 / 255
start = torch.empty_like(x).uniform_(-eps, eps)
xs = (x + start).clamp(0, 1).requires_grad_(True)  # one PGD step written out directly
g, = torch.autograd.grad(F.cross_entropy(m(norm(xs)), y), xs)
want = torch.min(torch.max(xs.detach() + step * g.sign(), x - eps), x + eps).clamp(0, 1)
got = train.pgd(m, x, y, norm, eps, step, 1, start=start)
d = (got - want).abs().max().item()
print(f"largest difference {d:.2e}; moved {(got - x).abs().max().item() * 255:.2f}/255 at most")
sys.exit(0 if d < 1e-6 and (got - x).abs().max() <= eps + 1e-7 else 1)
EOF2
)
expect $? "train.pgd: one step equals the direct PyTorch computation (sign of the input gradient, clipped to the eps ball and [0, 1]): $out"
out=$("$PY" - "$T" <<'EOF2' 2>&1
import json, subprocess, sys, numpy as np, torch
sys.path.insert(0, "tools")
import export_pytorch
# kernels with a known spectrum: constant (all energy at DC), a cosine at the
# highest 3 x 3 frequency (all energy in the corner bins), one tap (flat)
y, x = np.mgrid[0:3, 0:3]
cases = {"flat": (np.ones((3, 3)), 0.0, 1.0, 1 / 9), "cos": (np.cos(2 * np.pi * (y + x) / 3), 1.0, 0.0, 1 / 18),
         "tap": ((y == 1) & (x == 1), 4 / 9, 1 / 9, 1.0)}
for name, (k, high, dc, centre) in cases.items():
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4096, 10)).eval()
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(np.broadcast_to(k, (4, 3, 3, 3)).astype(np.float32)) * torch.arange(1, 5).view(4, 1, 1, 1))
    path = f"{sys.argv[1]}/spec-{name}.bin"
    export_pytorch.export(m, path, mean=(0, 0, 0), std=(1, 1, 1))
    r = json.loads(subprocess.run(["tools/kernel_spectrum.py", path], capture_output=True, text=True, check=True).stdout)
    if r["kernels"] != 12 or max(abs(r["highest_share"] - high), abs(r["dc_share"] - dc), abs(r["centre_share"] - centre)) > 1e-5:
        sys.exit(f"{name}: {r}")
bad = subprocess.run(["tools/kernel_spectrum.py", "README.md"], capture_output=True, text=True)
if bad.returncode != 1 or bad.stderr.count("\n") != 1 or "not an hfc-eval model" not in bad.stderr:
    sys.exit(f"README.md: exit {bad.returncode}, {bad.stderr!r}")
print("constant, highest-frequency cosine and one-tap kernels give their known shares")
EOF2
)
expect $? "tools/kernel_spectrum.py (the smoothness of first-layer kernels, README's adversarial pair): $out"
"$PY" train/paper.py --check >"$T/paper-check" 2>&1
expect $? "train/paper.py --check: $(tail -2 "$T/paper-check" | head -1)"
paper() { "$PY" train/paper.py --bn --seeds 0,1 --epochs 2 --batch-size 20 --device cpu --data "$T/cifar" "$@"; }
paper --out "$T/straight" >/dev/null 2>&1 &&
    paper --out "$T/paused" --state "$T/state" --pause-after 0.001 2>&1 | grep -q "paused after epoch 1/2" &&
    paper --out "$T/paused" --state "$T/state" --pause-after 0.001 >/dev/null 2>&1 &&
    "$HFC" --data "$TINY" --radius 4 --bn-stats batch --bn-batch 20 "$T/paused-seed1.bin" | grep -q '"images":40' &&
    "$PY" - "$T/straight-seed1.pt" "$T/paused-seed1.pt" <<'EOF2'
import sys, torch
a, b = (torch.load(p) for p in sys.argv[1:])
sys.exit(0 if a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a) else 1)
EOF2
expect $? "train/paper.py: two seeds at once, paused after epoch 1 and resumed = trained straight through; hfc-eval runs OUT-seedS.bin"

. tests/protos.sh

section "real CIFAR-10 test set"
DATA=${HFC_DATA:-../shared/cifar-10-batches-bin}
if [ -f "$DATA/test_batch.bin" ] || [ -f "$DATA" ]; then
    limit=${HFC_FULL:+0}
    limit=${limit:-500} # (make check's 10 minutes; HFC_FULL=1: all 10,000)
    for m in data/models/*.bin; do
        n=$limit # the prototype networks on fewer (they run slower in the reference)
        [[ $m == */protopnet-* && $limit != 0 ]] && n=200
        "$HFC" --data "$DATA" --limit "$n" --radius 4,8,12,16 "$m" >"$T/ours" &&
            "$PY" tools/reference.py --data "$DATA" --limit "$n" --radius 4,8,12,16 \
                --threads 2 "$m" >"$T/theirs"
        msg=$("$PY" - "$T/ours" "$T/theirs" <<'EOF'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
theirs = [json.loads(l) for l in open(sys.argv[2])]
worst, parts = 0, []
for a, b in zip(ours, theirs):
    d = [abs(a["correct"][k] - b["correct"][k]) for k in ("original", "low", "high")]
    worst = max(worst, *d)
    parts.append("r=%g %d/%d/%d vs %d/%d/%d" % (a["radius"], *[a["correct"][k] for k in ("original", "low", "high")],
                 *[b["correct"][k] for k in ("original", "low", "high")]))
print("%d images; worst difference %d images; %s" % (ours[0]["images"], worst, "; ".join(parts)))
sys.exit(0 if len(ours) == len(theirs) == 4 and worst <= 2 else 1)
EOF
)
        expect $? "fidelity $(basename "$m") vs tools/reference.py: $msg"
    done
    # README's numbers for the adversarially trained pair (#29) are hfc-eval's:
    # the smoothing table's rows on the first 1,000 images; with HFC_FULL=1 also
    # the PGD-20 accuracy on all 10,000 that each .json records
    adv=data/models/preact20-bn-adv.bin adv_nobn=data/models/preact20-nobn-adv.bin
    "$HFC" attack --data "$DATA" --limit 1000 --method pgd --eps 0.03,0.09 "$adv" |
        jq -se 'map(.correct) == [{"clean":700,"adversarial":434},{"clean":700,"adversarial":31}]' >/dev/null &&
        "$HFC" attack --data "$DATA" --limit 1000 --method fgsm --eps 0.03 --smooth 0.25 "$adv_nobn" |
        jq -e '.correct == {"clean":523,"adversarial":255}' >/dev/null
    expect $? "README's smoothing table for the adversarial pair: preact20-bn-adv clean 70.0%, PGD 0.03 43.4%, PGD 0.09 3.1%; preact20-nobn-adv at rho 0.25 clean 52.3%, FGSM 0.03 25.5%"
    if [ "${HFC_FULL:-0}" = 1 ]; then
        for m in "$adv" "$adv_nobn"; do
            "$HFC" attack --data "$DATA" --method pgd --eps 0.0313725490196 --steps 20 \
                --step-size 0.0078431372549 "$m" >"$T/pgd20" &&
                jq -e --slurpfile meta "${m%.bin}.json" '.images == 10000 and
                    .accuracy.clean == $meta[0].hfc_eval.clean_accuracy and
                    .accuracy.adversarial == $meta[0].hfc_eval.pgd20_accuracy' "$T/pgd20" >/dev/null
            expect $? "$(basename "$m"): clean and PGD-20 accuracy on the full test set as its .json and README record: $(jq -c .accuracy "$T/pgd20")"
        done
    fi
else
    echo "SKIP: real-data fidelity tests: no CIFAR-10 at $DATA (set HFC_DATA)"
fi

echo
section "end"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
