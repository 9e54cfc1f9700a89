// llama.cpp's tokenization of strings with GGUF models' vocabularies: the
// oracle graft's tokenizers are checked against (tools/tokgolden,
// internal/tokfixture).
//
//   node tokenize.mjs --strings S.json --model A.gguf [--model B.gguf ...]
//
// S.json is a JSON array of strings. Each is tokenized as llama_tokenize
// does with add_special false and parse_special true (special tokens in
// the text become their ids; no BOS is added).
//
// Output, one JSON array with an object per model, in order: {"ids":
// [[...], ...], "bos", "eos", "eot" (ids, -1 for none, as node-llama-cpp
// reports them: only control tokens), "add_bos" (whether llama.cpp
// prepends BOS to a prompt), "eog" (every id that ends generation,
// ascending), "vocab" (the size of the vocabulary as the file's metadata
// lists it)}. Exit status 3 means node-llama-cpp is not installed (run
// `make llamacpp`).

import {readFileSync} from "node:fs";

let llamaCpp;
try {
  llamaCpp = await import("node-llama-cpp");
} catch (err) {
  console.error(`node-llama-cpp is not installed in tools/llamacpp (run \`make llamacpp\`): ${err.message}`);
  process.exit(3);
}
const {getLlama, LlamaLogLevel} = llamaCpp;

const usage = "usage: node tokenize.mjs --strings S.json --model A.gguf [--model B.gguf ...]";

function parseArgs(argv) {
  const args = {models: []};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!["--model", "--strings"].includes(key) || i + 1 >= argv.length) {
      throw new Error(`${usage} (bad argument ${key})`);
    }
    if (key === "--model") args.models.push(argv[i + 1]);
    else args.strings = argv[i + 1];
  }
  if (args.models.length === 0 || !args.strings) throw new Error(`--model and --strings are required; ${usage}`);
  return args;
}

async function tokenizeWith(llama, modelPath, strings) {
  const model = await llama.loadModel({modelPath, gpuLayers: 0, vocabOnly: true});
  const id = (t) => (t == null ? -1 : t);
  const vocab = model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0;
  const eog = [];
  for (let t = 0; t < vocab; t++) {
    if (model.isEogToken(t)) eog.push(t);
  }
  const out = {
    ids: strings.map((s) => Array.from(model.tokenize(s, true))),
    bos: id(model.tokens.bos),
    eos: id(model.tokens.eos),
    eot: id(model.tokens.eot),
    add_bos: model.tokens.shouldPrependBosToken,
    eog,
    vocab,
  };
  await model.dispose();
  return out;
}

try {
  const args = parseArgs(process.argv.slice(2));
  const strings = JSON.parse(readFileSync(args.strings, "utf8"));
  if (!Array.isArray(strings) || !strings.every((s) => typeof s === "string")) {
    throw new Error(`${args.strings} is not a JSON array of strings`);
  }
  const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
  const out = [];
  for (const m of args.models) out.push(await tokenizeWith(llama, m, strings));
  console.log(JSON.stringify(out));
  await llama.dispose();
} catch (err) {
  console.error(err.stack ?? String(err));
  process.exit(1);
}
