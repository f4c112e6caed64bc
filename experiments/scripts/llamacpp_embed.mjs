// Sentence embeddings of a BERT GGUF in llama.cpp (node-llama-cpp's prebuilt CPU binaries),
// compared with claimlab's: per sentence the cosine between llama.cpp's embedding (the model's
// own pooling, mean for `claimlab compress` output) and ours, and whether llama.cpp's WordPiece
// tokenizer gives our token ids.
//
// Usage: node llamacpp_embed.mjs MODEL.gguf EMB.json
//   EMB.json: as `claimlab compress --model minilm ... --eval-ids-out EMB.json` writes it
//   ({"sentences": [...], "ids": [[...]], "embeddings": [[...]]}).
// Prints one JSON object: {"sentences", "mean_cosine", "min_cosine", "token_mismatches"}.
import {readFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const [modelPath, embPath] = process.argv.slice(2);
if (!modelPath || !embPath) {
    console.error("usage: node llamacpp_embed.mjs MODEL.gguf EMB.json");
    process.exit(2);
}
const ref = JSON.parse(readFileSync(embPath, "utf8"));
const llama = await getLlama({gpu: false, build: "never", maxThreads: 2, logLevel: "error"});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createEmbeddingContext({contextSize: 512, threads: 2});
const cos = [];
let mismatches = 0;
for (let i = 0; i < ref.sentences.length; i++) {
    const toks = model.tokenize(ref.sentences[i]);
    const ours = ref.ids[i];
    // llama.cpp adds [CLS] and [SEP] when it evaluates; compare the inner pieces.
    const inner = ours.slice(1, -1);
    const same = toks.length === inner.length && toks.every((t, j) => Number(t) === inner[j]);
    if (!same) mismatches++;
    const e = (await ctx.getEmbeddingFor(ref.sentences[i])).vector;
    const a = ref.embeddings[i];
    let ab = 0, aa = 0, bb = 0;
    for (let j = 0; j < a.length; j++) { ab += a[j] * e[j]; aa += a[j] * a[j]; bb += e[j] * e[j]; }
    cos.push(ab / Math.sqrt(aa * bb));
}
const mean = cos.reduce((s, v) => s + v, 0) / cos.length;
console.log(JSON.stringify({
    llama_cpp: "node-llama-cpp", sentences: cos.length, mean_cosine: mean,
    min_cosine: Math.min(...cos), token_mismatches: mismatches,
    first_cosines: cos.slice(0, 5),
}));
await ctx.dispose();
await model.dispose();
