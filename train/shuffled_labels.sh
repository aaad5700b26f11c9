#!/usr/bin/env bash
# train/shuffled_labels.sh - the paper's Section 3 on this CPU: the
# pre-activation ResNet-20 (BN) trained on the first N training images with
# their natural labels and with all of them shuffled (a seeded permutation),
# a checkpoint every 2 epochs; then hfc-eval on those N training images
# (original, low and high at r = 4 and 8), with the labels each run trained
# on, over the epochs (every 4th epoch: hfc-eval runs up to 32 models at once).
#
#   train/shuffled_labels.sh OUT [N] [EPOCHS]      (defaults 2000 and 80)
#
# OUT/natural*.bin, OUT/shuffled*.bin   the checkpoint series
# OUT/train.npy, OUT/natural.labels.npy the N images and their labels
# OUT/KIND.jsonl                        hfc-eval's reports, one per checkpoint and radius
# OUT/KIND/accuracy-vs-epoch.png        its picture (and the run's others)
# OUT/summary.txt                       epoch, then original/low/high at r = 4 per kind
set -euo pipefail
out=${1:?usage: train/shuffled_labels.sh OUT [N] [EPOCHS]}
n=${2:-2000}
epochs=${3:-80}
data=${HFC_DATA:-../shared/cifar-10-batches-bin}
py=${PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.."
mkdir -p "$out"
for kind in natural shuffled; do
    extra=()
    [ "$kind" = shuffled ] && extra=(--shuffle-labels 1)
    [ -f "$out/$kind.bin" ] ||
        "$py" train/train.py --family preact --bn --epochs "$epochs" --limit "$n" --no-augment \
            --save-every 2 --device cpu --data "$data" "${extra[@]}" --out "$out/$kind"
done
"$py" - "$data/data_batch_1.bin" "$n" "$out" <<'EOF'
import sys, numpy as np
raw = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 3073)[:int(sys.argv[2])]
np.save(sys.argv[3] + "/train.npy", raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy())
np.save(sys.argv[3] + "/natural.labels.npy", raw[:, 0].copy())
EOF
for kind in natural shuffled; do
    # every other checkpoint: hfc-eval takes up to 32 models in one run
    series=$(ls "$out/$kind"-epoch*.bin | sort -V | awk 'NR % 2 == 0')
    # shellcheck disable=SC2086
    build/hfc-eval --data "$out/train.npy" --labels "$out/$kind.labels.npy" --radius 4,8 \
        --png "$out/$kind" $series "$out/$kind.bin" >"$out/$kind.jsonl"
done
for kind in natural shuffled; do
    echo "== $kind labels: training-set accuracy at r = 4 (original / low / high) by epoch"
    jq -r --arg last "$epochs" 'select(.radius == 4) | [((.model | capture("epoch(?<e>[0-9]+)").e) // $last),
        .accuracy.original, .accuracy.low, .accuracy.high] | @tsv' "$out/$kind.jsonl"
done | tee "$out/summary.txt"
