# tests/protos.sh - prototype networks (ProtoPNet): sourced by tests/run.sh,
# whose helpers and variables (section, expect, errors, same_counts, $HFC, $PY,
# $REF, $T, $TINY, $MODEL) it uses. The models: tools/zoo/models.py's
# ProtoPNet heads over three zoo backbones, random weights, BN statistics
# and prototypes (tests/gen_refs.py wrote them by both routes).

section "prototype networks: protos, push, pictures"
PROTO=$REF/zoo-protopnet-vgg11.bin
PROTO_MODELS="zoo-protopnet-vgg11 zoo-protopnet-resnet18 zoo-protopnet-mobilenetv2"
PDATA=${HFC_DATA:-../shared/cifar-10-batches-bin}
if [ -f "$PDATA/test_batch.bin" ]; then
    for f in $PROTO_MODELS; do
        for route in "" .onnx; do
            same_counts "$REF/$f$route.bin" --data "$PDATA" --limit 200
            expect $? "$f${route:- (torch.fx)}: correct counts equal tools/reference.py's at r = 0, 4, 8 (200 real test images)"
        done
        "$HFC" protos --data "$PDATA" --limit 200 --images 0,1,2,3,4,5,6,7,8,9,150 --top 5 "$REF/$f.bin" >"$T/pp-ours" &&
            "$PY" tools/reference.py protos --data "$PDATA" --limit 200 --images 0,1,2,3,4,5,6,7,8,9,150 --top 5 \
                "$REF/$f.bin" >"$T/pp-theirs"
        msg=$("$PY" tests/protos_check.py "$T/pp-ours" "$T/pp-theirs" 2>&1)
        expect $? "$f: protos vs the float64 reference: ${msg##*$'\n'}"
        "$HFC" protos --push --data "$PDATA" --set train --limit 300 "$REF/$f.bin" >"$T/pp-ours" &&
            "$PY" tools/reference.py protos --push --data "$PDATA/data_batch_1.bin" --limit 300 \
                "$REF/$f.bin" >"$T/pp-theirs"
        msg=$("$PY" tests/protos_check.py --push "$T/pp-ours" "$T/pp-theirs" 2>&1)
        expect $? "$f: the push over 300 training images vs the float64 reference: ${msg##*$'\n'}"
    done
else
    echo "SKIP: prototype networks on real images: no CIFAR-10 at $PDATA (set HFC_DATA)"
fi

# The tapped feature map where an inference engine fuses it into its conv:
# add-on layers ending in conv + BN + ReLU (one step, BN folded, ReLU fused).
"$PY" - "$T/pp-fused.bin" <<'PYEOF' >/dev/null 2>&1 &&
import sys, torch, torch.nn as nn
sys.path.insert(0, "tools"); sys.path.insert(0, "tools/zoo"); sys.path.insert(0, "tests")
import export_pytorch, hfc_models, models as zoo
from gen_refs import randomize
m = zoo.protopnet("resnet18")
m.add_on_layers = nn.Sequential(nn.Conv2d(64, 16, 1), nn.BatchNorm2d(16), nn.ReLU())
randomize(m, torch.Generator().manual_seed(4))
export_pytorch.export(m, sys.argv[1], mean=hfc_models.CIFAR10_MEAN, std=hfc_models.CIFAR10_STD)
PYEOF
    "$HFC" protos --data "$TINY" --images 0,1,2,30 "$T/pp-fused.bin" >"$T/pp-ours" &&
    "$PY" tools/reference.py protos --data "$TINY" --images 0,1,2,30 "$T/pp-fused.bin" >"$T/pp-theirs"
msg=$("$PY" tests/protos_check.py "$T/pp-ours" "$T/pp-theirs" 2>&1)
expect $? "protos where the feature map is a conv + BN + ReLU step (the tap keeps it): ${msg##*$'\n'}"

# The same model, any batch and thread count: the same report (but its time).
for args in "-b 8 -j 1" "-b 24 -j 2" "-b 256 -j 2"; do
    # shellcheck disable=SC2086
    "$HFC" protos --data "$TINY" --images 0,5 $args "$PROTO" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); d.pop("seconds"); print(json.dumps(d))' >"$T/pp-b${args// /}"
done
cmp -s "$T/pp-b-b8-j1" "$T/pp-b-b24-j2" && cmp -s "$T/pp-b-b8-j1" "$T/pp-b-b256-j2"
expect $? "protos: the same report for -b 8/24/256 and -j 1/2"

"$HFC" protos --push --data "$TINY" "$PROTO" >"$T/push.json" &&
    "$HFC" protos --data "$TINY" --images 0,5 --top 3 --prototypes "$T/push.json" --png "$T/pp-png" "$PROTO" >"$T/pp-report" &&
    "$PY" - "$T/push.json" "$T/pp-report" "$T/pp-png" <<'PYEOF'
import base64, json, os, sys
push, rep, png = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
assert push["experiment"] == "push" and push["images"] == 40 and len(push["prototypes"]) == 20
for e in push["prototypes"]:
    t, l, b, r = e["box"]
    assert len(base64.b64decode(e["patch"])) == 3 * (b - t) * (r - l), e
src = [p["source"] for p in rep["per_prototype"]]
assert [(s["image"], s["position"]) for s in src] == [(e["image"], e["position"]) for e in push["prototypes"]]
assert sorted(os.listdir(png)) == ["protos-0.png", "protos-5.png"], os.listdir(png)
assert all(os.path.getsize(os.path.join(png, f)) > 1000 for f in os.listdir(png))
PYEOF
expect $? "protos --push writes a record; --prototypes reads it back (each prototype's source) and --png draws protos-IMAGE.png"

"$HFC" protos --push --data "$TINY" "$REF/zoo-protopnet-resnet18.bin" >"$T/push-other.json"
printf '{"experiment":"push",' >"$T/push-broken.json"
"$HFC" --data "$TINY" --radius 4 "$MODEL" >"$T/not-push.json"
"$PY" - "$T/push.json" "$T/push-bad-patch.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["prototypes"][3]["patch"] = d["prototypes"][3]["patch"][:-8]  # a patch shorter than its box
json.dump(d, open(sys.argv[2], "w"))
PYEOF
errors protos

# The second output of ProtoPNet's (logits, min_distances), by both routes:
# export_pytorch's output_index and onnx_to_hfc.py --output-index 1.
"$PY" - "$T" <<'PYEOF' >/dev/null 2>&1
import sys, warnings, numpy as np, torch
sys.path.insert(0, "tools"); sys.path.insert(0, "tools/zoo"); sys.path.insert(0, "tests")
import export_pytorch, hfc_models, onnx_to_hfc, models as zoo
from gen_refs import randomize, write
out = sys.argv[1]
model = randomize(zoo.protopnet("vgg11"), torch.Generator().manual_seed(3))
mean, std = hfc_models.CIFAR10_MEAN, hfc_models.CIFAR10_STD
export_pytorch.export(model, out + "/mind.bin", mean=mean, std=std, output_index=1)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), out + "/mind.onnx", opset_version=13)
onnx_to_hfc.convert(out + "/mind.onnx", out + "/mind.onnx.bin", mean=mean, std=std, output_index=1)
pixels = torch.from_numpy(np.random.default_rng(5).uniform(0, 255, (12, 3, 32, 32)).astype(np.float32))
norm = (pixels / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
with torch.no_grad():
    mind = model(norm)[1].numpy().astype("<f4")
write(out + "/mind.in", [12, 3072], pixels.numpy())
write(out + "/mind.out", list(mind.shape), mind)
PYEOF
for route in "" .onnx; do
    counted build/test_engine "ProtoPNet's min_distances (output index 1${route:+, ONNX})" "$T/mind$route.bin" \
        "$T/mind.in" "$T/mind.out"
done
