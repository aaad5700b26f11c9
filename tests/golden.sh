#!/usr/bin/env bash
# tests/golden.sh HFC OUTDIR - every subcommand's output on the shipped
# models, for checking that a change of layout changes no output.
#
# Runs each command below into OUTDIR (JSON reports, tables, pictures) and
# prints one line per output file: "SHA256  NAME", with "seconds" taken out
# of JSON first. tests/golden.sha256 holds the lines recorded before the
# code was moved; tests/run.sh compares. Inputs are fixed: the generated
# tests/gen_refs.py file build/tests/ref/tiny.cifar (40 random images) and
# tools/testcard.py's test card, at fixed paths, since reports name them.
# Recorded on an AVX-512 machine: other ISAs round differently.
set -eu
# The prototype layer's distances go through OpenBLAS's SGEMM, whose rounding
# depends on the kernels it picks for the CPU (SkylakeX on a Zen 4, Haswell on
# a Zen 5): hold it to Haswell's, which every machine that runs this has.
export OPENBLAS_CORETYPE=Haswell
hfc=$1
out=$2
data=build/tests/ref/tiny.cifar
card=build/golden-testcard.cifar
M=data/models
rm -rf "$out"
mkdir -p "$out"
/usr/bin/python3 tools/testcard.py "$card" >/dev/null

run() {
    local name=$1
    shift
    "$hfc" "$@" >"$out/$name.json" 2>"$out/$name.err" || {
        echo "golden: $name: exit $?: $(head -c 300 "$out/$name.err")" >&2
        exit 1
    }
}

run evaluate-disc --data "$data" -r 0,4,8,16 "$M/preact20-bn.bin" "$M/vgg-nobn.bin"
run evaluate-square --data "$data" --mask square -r 4,8 "$M/preact20-nobn.bin"
run evaluate-gaussian --data "$data" --mask gaussian -r 4 "$M/vgg-bn.bin"
run evaluate-band --data "$data" --mask band -r 2:6,6:12 "$M/preact20-bn.bin"
run evaluate-pretty --data "$data" -r 4 --pretty "$M/paper32/paper32-bn-seed0.bin"
run compare compare --data "$data" -r 4,8 "$M/preact20-bn.bin" "$M/preact20-nobn.bin"
run protocol --data "$data" --bn-stats batch --bn-batch 20 --rescale max -r 4,8 "$M/preact20-bn.bin"
run smooth --data "$data" --smooth 0.5 -r 4 "$M/vgg-bn.bin"
run attack-pgd attack --data "$data" --limit 20 --steps 3 --eps 0.03,0.06 -r 4 "$M/preact20-bn.bin"
run attack-fgsm attack --data "$data" --limit 20 --method fgsm --random-start --seed 3 "$M/vgg-bn.bin"
run margin margin --data "$data" --limit 2 --max-iter 5 --png "$out/margin" "$M/preact20-nobn.bin"
run heatmap heatmap --data "$data" --limit 4 --png "$out/heatmap" "$M/preact20-bn.bin"
run id id --data "$data" --limit 30 --resamples 2 --version original,low --png "$out/id" \
    "$M/preact20-bn.bin"
for k in 0 1 2; do
    run "shard-$k" --data "$data" -r 4,8 --shard "$k/3" "$M/vgg-bn.bin"
done
run merge merge "$out/shard-0.json" "$out/shard-1.json" "$out/shard-2.json"
run pictures --data "$card" -r 8 --png "$out/pictures" --png-images 0,1,2,5,6 \
    "$M/preact20-bn.bin" "$M/vgg-nobn.bin"
run protos-push protos --push --data "$data" "$M/protopnet-vgg-bn.bin"
run protos protos --data "$card" -r 8 --top 3 --images 0,5 --prototypes "$out/protos-push.json" \
    --png "$out/protos" "$M/protopnet-vgg-bn.bin"
run pictures-compare compare --data "$card" -r 4,8 --png "$out/pictures-compare" --png-images 0 \
    "$M/preact20-bn.bin"

cd "$out"
find . -type f ! -name '*.err' | sort | while read -r f; do
    case $f in
    *.json) sed 's/"seconds":[[:space:]]*[0-9.e+-]*//' "$f" | sha256sum | sed "s|-\$|${f#./}|" ;;
    *) sha256sum "$f" | sed 's|  \./|  |' ;;
    esac
done
