// Perplexity of a GGUF model in llama.cpp (through node-llama-cpp's prebuilt CPU binaries) on
// given token ids, with the windowing of `claimlab compress` / claimlab_runtime::perplexity:
// disjoint windows of CONTEXT tokens, each window's first token unscored, the rest scored as
// -ln p(x_t | window prefix). Also the greedy continuation of "The capital of France is".
//
// Usage: node llamacpp_check.mjs MODEL.gguf IDS.json [CONTEXT=512]
//   IDS.json: {"ids": [u32...]} or a plain array (as `claimlab compress --eval-ids-out` writes).
// Prints one JSON object: {"llama_cpp": ..., "tokens", "scored", "nll", "ppl", "greedy"}.
// Run through llamacpp_check.sh, which installs node-llama-cpp into a temporary directory.
import {readFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const [modelPath, idsPath, ctxArg] = process.argv.slice(2);
if (!modelPath || !idsPath) {
    console.error("usage: node llamacpp_check.mjs MODEL.gguf IDS.json [CONTEXT]");
    process.exit(2);
}
const context = Number(ctxArg ?? 512);
const CHUNK = 32;
const raw = JSON.parse(readFileSync(idsPath, "utf8"));
const ids = Array.isArray(raw) ? raw : raw.ids;
if (!Array.isArray(ids) || ids.length < 2) {
    console.error(`${idsPath}: need at least 2 token ids`);
    process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never", maxThreads: 2, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: context, batchSize: context, threads: 2});
const seq = ctx.getSequence();

let sum = 0; // compensated sum of the per-token NLL (nats)
let comp = 0;
let scored = 0;
for (let begin = 0; begin < ids.length; begin += context) {
    const win = ids.slice(begin, Math.min(begin + context, ids.length));
    if (win.length < 2) break;
    await seq.clearHistory();
    // Chunks of CHUNK positions continue the same sequence; each position but the window's last
    // asks for the full logit vector of the next token: -ln p = logsumexp(logits) - logit[target].
    for (let c = 0; c < win.length; c += CHUNK) {
        const part = win.slice(c, c + CHUNK);
        const input = part.map((t, j) => c + j + 1 < win.length ? [t, {generateNext: {logits: true}}] : t);
        const out = await seq.controlledEvaluate(input);
        for (let j = 0; j < part.length && c + j + 1 < win.length; j++) {
            const logits = out[j]?.next?.logits;
            if (!logits) throw new Error(`no logits at token ${begin + c + j}`);
            let max = -Infinity;
            for (const v of logits.values()) if (v > max) max = v;
            let tot = 0;
            for (const v of logits.values()) tot += Math.exp(v - max);
            const lt = logits.get(win[c + j + 1]);
            if (lt === undefined) throw new Error(`no logit for token ${win[c + j + 1]}`);
            const y = max + Math.log(tot) - lt - comp;
            const t = sum + y;
            comp = (t - sum) - y;
            sum = t;
            scored++;
        }
    }
}
const mean = sum / scored;

await seq.clearHistory();
const prompt = model.tokenize("The capital of France is");
let greedy = "";
let toks = [...prompt];
for (let k = 0; k < 3; k++) {
    await seq.clearHistory();
    const o = await seq.controlledEvaluate(toks.map((t, i) => i === toks.length - 1 ? [t, {generateNext: {token: true}}] : t));
    const nt = o[toks.length - 1].next.token;
    toks.push(nt);
    greedy += model.detokenize([nt]);
}
console.log(JSON.stringify({
    llama_cpp: llama.llamaCppRelease, binding: "node-llama-cpp prebuilt CPU", model: modelPath,
    tokens: ids.length, context, scored, nll: mean, ppl: Math.exp(mean), greedy,
}));
await ctx.dispose();
await model.dispose();
