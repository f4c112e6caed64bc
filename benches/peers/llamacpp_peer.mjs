// llama.cpp (through the prebuilt binaries of the npm package node-llama-cpp) on the same prompt
// and model as `claimlab generate`: prompt-processing and greedy decoding speed, CPU only.
// Usage: node llamacpp_peer.mjs MODEL.gguf PROMPT_FILE DECODE_TOKENS THREADS
// Prints one JSON object. Installed by benches/peers/runtime_peers.py (never vendored).
import {readFileSync} from "node:fs";
import {getLlama} from "node-llama-cpp";

const [modelPath, promptFile, decodeArg, threadsArg] = process.argv.slice(2);
const decode = Number(decodeArg);
const threads = Number(threadsArg);
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath});
const prompt = model.tokenize(readFileSync(promptFile, "utf8"));
const ctx = await model.createContext({
  contextSize: prompt.length + decode + 8,
  batchSize: Math.max(prompt.length, 32),
  threads,
});
const seq = ctx.getSequence();
const out = [];
const t0 = performance.now();
let tFirst = null;
for await (const t of seq.evaluate(prompt, {temperature: 0})) {
  if (tFirst === null) tFirst = performance.now();
  out.push(t);
  if (out.length >= decode) break;
}
const t1 = performance.now();
const prefill = (tFirst - t0) / 1000;
const rest = (t1 - tFirst) / 1000;
console.log(JSON.stringify({
  peer: "llama.cpp via node-llama-cpp",
  model: modelPath,
  threads,
  prompt_tokens: prompt.length,
  decoded_tokens: out.length,
  prefill_seconds: prefill,
  prefill_tokens_per_s: prompt.length / prefill,
  decode_tokens_per_s: (out.length - 1) / rest,
  continuation: model.detokenize(out.slice(0, 12)),
}));
