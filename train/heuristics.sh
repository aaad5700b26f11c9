#!/usr/bin/env bash
# train/heuristics.sh - the paper's Figures 3-6 on this CPU: the
# pre-activation ResNet-20 trained on the first N training images under each
# training heuristic the paper compares, a checkpoint every 2 epochs; then
# hfc-eval over the epochs on those N training images and on the first N
# test images (original, low and high at r = 4, 8, 12, 16).
#
#   train/heuristics.sh OUT [N] [EPOCHS]      (defaults 2000 and 20)
#
# OUT/NAME*.bin                  each heuristic's checkpoint series
# OUT/NAME-{train,test}.jsonl    hfc-eval's reports
# OUT/NAME-{train,test}/accuracy-vs-epoch.png   the pictures
# OUT/summary.txt                the last epoch's accuracies at r = 4 and 8
set -euo pipefail
out=${1:?usage: train/heuristics.sh OUT [N] [EPOCHS]}
n=${2:-2000}
epochs=${3:-20}
data=${HFC_DATA:-../shared/cifar-10-batches-bin}
py=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.."
mkdir -p "$out"
# name and train.py options: the baseline is the shipped recipe (BN, lr 0.1, batch 128, crop + flip)
runs=(
    "baseline|"
    "mixup|--mixup 1"
    "dropout|--dropout 0.5"
    "batch32|--batch-size 32"
    "lr0.01|--lr 0.01"
    "nobn|--no-bn --lr 0.05 --warmup 2 --clip 2"
    "adversarial|--adversarial pgd --eps 8/255 --steps 2 --step-size 4/255"
)
for run in "${runs[@]}"; do
    name=${run%%|*}
    read -r -a opts <<<"${run#*|}"
    bn=(--bn)
    [[ " ${opts[*]} " == *" --no-bn "* ]] && bn=()
    [ -f "$out/$name.bin" ] ||
        "$py" train/train.py --family preact "${bn[@]}" --epochs "$epochs" --limit "$n" --save-every 2 \
            --device cpu --data "$data" "${opts[@]}" --out "$out/$name"
done
"$py" - "$data" "$n" "$out" <<'EOF'
import sys, numpy as np
for name, f in (("train", "data_batch_1.bin"), ("test", "test_batch.bin")):
    raw = np.fromfile(sys.argv[1] + "/" + f, dtype=np.uint8).reshape(-1, 3073)[:int(sys.argv[2])]
    np.save(f"{sys.argv[3]}/{name}.npy", raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy())
    np.save(f"{sys.argv[3]}/{name}.labels.npy", raw[:, 0].copy())
EOF
for run in "${runs[@]}"; do
    name=${run%%|*}
    for set in train test; do
        # shellcheck disable=SC2046
        build/hfc-eval --data "$out/$set.npy" --labels "$out/$set.labels.npy" --radius 4,8,12,16 \
            --png "$out/$name-$set" $(ls "$out/$name"-epoch*.bin | sort -V) "$out/$name.bin" \
            >"$out/$name-$set.jsonl"
    done
done
for run in "${runs[@]}"; do
    name=${run%%|*}
    for set in train test; do
        jq -r --arg name "$name" --arg set "$set" 'select(.model == ($name + ".bin") and (.radius == 4 or .radius == 8)) |
            [$name, $set, .radius, .accuracy.original, .accuracy.low, .accuracy.high] | @tsv' "$out/$name-$set.jsonl"
    done
done | tee "$out/summary.txt"
