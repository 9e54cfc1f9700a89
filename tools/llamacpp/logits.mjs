// Prints, as one JSON object, llama.cpp's next-token log-probabilities at
// every position of a token sequence, for a base GGUF model alone and with
// a GGUF LoRA adapter: the check that graft's GGUF LoRA export runs in
// llama.cpp as graft's own adapter does (native/cmd/graft/export_test.go).
//
//   node logits.mjs --model BASE.gguf --lora ADAPTER.gguf --tokens 1,403,407
//
// Output: {"vocab": V, "base": [[logp x V] x T], "lora": [[logp x V] x T]}.
// node-llama-cpp returns softmax probabilities rather than raw logits; their
// logs are the logits less a per-position constant, which is all a
// comparison of logit shifts needs. Exit status 3 means node-llama-cpp is
// not installed (run `make llamacpp`).

let llamaCpp;
try {
  llamaCpp = await import("node-llama-cpp");
} catch (err) {
  console.error(`node-llama-cpp is not installed in tools/llamacpp (run \`make llamacpp\`): ${err.message}`);
  process.exit(3);
}
const {getLlama, LlamaLogLevel} = llamaCpp;

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!["--model", "--lora", "--tokens"].includes(key) || i + 1 >= argv.length) {
      throw new Error(`usage: node logits.mjs --model BASE.gguf --lora ADAPTER.gguf --tokens 1,2,3 (bad argument ${key})`);
    }
    args[key.slice(2)] = argv[i + 1];
  }
  for (const k of ["model", "lora", "tokens"]) {
    if (!args[k]) throw new Error(`--${k} is required`);
  }
  args.tokens = args.tokens.split(",").map((s) => {
    const t = Number(s);
    if (!Number.isInteger(t) || t < 0) throw new Error(`token ${JSON.stringify(s)} is not a token id`);
    return t;
  });
  return args;
}

// logProbs evaluates the tokens in a fresh context and returns, for each
// position, the log-probability of every vocabulary entry.
async function logProbs(model, tokens, lora) {
  const context = await model.createContext({
    contextSize: Math.max(32, tokens.length + 1),
    batchSize: tokens.length,
    sequences: 1,
    flashAttention: false,
    // One thread: the model is tiny, and llama.cpp's spinning worker
    // threads stall for seconds on a busy two-core machine.
    threads: 1,
    // f32 caches, so that llama.cpp computes in f32 as graft does.
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    ...(lora ? {lora: {adapters: [{filePath: lora, scale: 1}]}} : {}),
  });
  try {
    const sequence = context.getSequence();
    // temperature 0 (greedy) leaves the logits untouched by any sampler.
    const input = tokens.map((t) => [t, {generateNext: {probabilities: true, options: {temperature: 0}}}]);
    const out = await sequence.controlledEvaluate(input);
    return out.map((item, pos) => {
      const probs = item?.next?.probabilities;
      if (!probs) throw new Error(`no probabilities at position ${pos}`);
      const row = new Array(probs.size).fill(null);
      for (const [token, p] of probs) {
        if (token >= row.length) throw new Error(`token ${token} is outside the vocabulary of ${probs.size}`);
        row[token] = Math.log(p);
      }
      return row;
    });
  } finally {
    await context.dispose();
  }
}

try {
  const args = parseArgs(process.argv.slice(2));
  const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
  const base = await logProbs(model, args.tokens, null);
  const lora = await logProbs(model, args.tokens, args.lora);
  process.stdout.write(JSON.stringify({vocab: base[0].length, base, lora}) + "\n");
  await model.dispose();
  await llama.dispose();
} catch (err) {
  console.error(`logits.mjs: ${err.stack || err}`);
  process.exit(1);
}
