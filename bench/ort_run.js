// bench/ort_run.js - ONNX Runtime (CPU) as bench/bench.py's peer: inference
// only, on inputs already split and preprocessed (float32, N x 3 x S x S).
//   node bench/ort_run.js MODEL.onnx INPUTS.f32 N THREADS BATCH[,BATCH...] [S]
// (S, the image side, defaults to 32).
// Prints one JSON line: the best batch size's seconds, every batch size's
// seconds, and the argmax of every input (for bench.py to check the counts).
// onnxruntime-node comes from ONNXRUNTIME_NODE (a node_modules folder), else
// ./node_modules: `npm install --ignore-scripts onnxruntime-node@1.30.0`.
"use strict";
const fs = require("fs");
const path = require("path");
const where = process.env.ONNXRUNTIME_NODE || path.join(process.cwd(), "node_modules");
const ort = require(path.join(where, "onnxruntime-node"));

async function main() {
    const [model, inputs, nArg, threadsArg, batchesArg, sideArg] = process.argv.slice(2);
    const n = Number(nArg), threads = Number(threadsArg), side = Number(sideArg || 32);
    const per = 3 * side * side;
    const buf = fs.readFileSync(inputs);
    if (buf.length !== n * per * 4)
        throw new Error(`${inputs}: ${buf.length} bytes, expected ${n * per * 4}`);
    const data = new Float32Array(buf.buffer, buf.byteOffset, n * per);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: threads, interOpNumThreads: 1,
        graphOptimizationLevel: "all", executionMode: "sequential",
    });
    const inName = session.inputNames[0], outName = session.outputNames[0];
    const times = {};
    let best = Infinity, preds = null;
    for (const b of batchesArg.split(",").map(Number)) {
        const warm = new ort.Tensor("float32", data.slice(0, Math.min(b, n) * per), [Math.min(b, n), 3, side, side]);
        await session.run({[inName]: warm});
        const got = new Int32Array(n);
        const t0 = process.hrtime.bigint();
        for (let s = 0; s < n; s += b) {
            const m = Math.min(b, n - s);
            const x = new ort.Tensor("float32", data.subarray(s * per, (s + m) * per), [m, 3, side, side]);
            const out = (await session.run({[inName]: x}))[outName];
            const k = out.dims[1];
            for (let i = 0; i < m; i++) {
                let arg = 0;
                for (let j = 1; j < k; j++)
                    if (out.data[i * k + j] > out.data[i * k + arg]) arg = j;
                got[s + i] = arg;
            }
        }
        const sec = Number(process.hrtime.bigint() - t0) / 1e9;
        times[b] = sec;
        if (sec < best) { best = sec; preds = got; }
    }
    console.log(JSON.stringify({seconds: best, by_batch: times, argmax: Array.from(preds)}));
}
main().catch(e => { console.error(`ort_run.js: ${e.message}`); process.exit(1); });
