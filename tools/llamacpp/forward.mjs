// Prints, as one JSON object, llama.cpp's next-token log-probabilities at
// every position of a token sequence and the greedy continuation after it:
// the oracle graft's model families are checked against
// (internal/randgguf/llamacpp_test.go).
//
//   node forward.mjs --model M.gguf --tokens 1,403,407 --generate 20
//
// Output: {"vocab": V, "logprobs": [[logp x V] x T], "greedy": [id x N]}.
// node-llama-cpp returns softmax probabilities rather than raw logits; their
// logs are the logits less a per-position constant. Each greedy token is
// the argmax of the previous position's probabilities, fed back through the
// KV cache one token at a time, as graft's generation does. Exit status 3
// means node-llama-cpp is not installed (run `make llamacpp`).

let llamaCpp;
try {
  llamaCpp = await import("node-llama-cpp");
} catch (err) {
  console.error(`node-llama-cpp is not installed in tools/llamacpp (run \`make llamacpp\`): ${err.message}`);
  process.exit(3);
}
const {getLlama, LlamaLogLevel} = llamaCpp;

function parseArgs(argv) {
  const args = {generate: "0"};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!["--model", "--tokens", "--generate"].includes(key) || i + 1 >= argv.length) {
      throw new Error(`usage: node forward.mjs --model M.gguf --tokens 1,2,3 [--generate N] (bad argument ${key})`);
    }
    args[key.slice(2)] = argv[i + 1];
  }
  for (const k of ["model", "tokens"]) {
    if (!args[k]) throw new Error(`--${k} is required`);
  }
  args.tokens = args.tokens.split(",").map((s) => {
    const t = Number(s);
    if (!Number.isInteger(t) || t < 0) throw new Error(`token ${JSON.stringify(s)} is not a token id`);
    return t;
  });
  args.generate = Number(args.generate);
  if (!Number.isInteger(args.generate) || args.generate < 0) throw new Error(`--generate ${args.generate} is not a count`);
  return args;
}

// row turns node-llama-cpp's probability map into log-probabilities.
function row(probs, pos) {
  if (!probs) throw new Error(`no probabilities at position ${pos}`);
  const out = new Array(probs.size).fill(null);
  for (const [token, p] of probs) {
    if (token >= out.length) throw new Error(`token ${token} is outside the vocabulary of ${probs.size}`);
    out[token] = Math.log(p);
  }
  return out;
}

function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}

try {
  const args = parseArgs(process.argv.slice(2));
  const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
  const context = await model.createContext({
    contextSize: Math.max(64, args.tokens.length + args.generate + 1),
    batchSize: args.tokens.length,
    sequences: 1,
    flashAttention: false,
    threads: 1, // see logits.mjs: spinning threads stall a busy machine
    // f32 caches, so that llama.cpp computes in f32 as graft does.
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
  });
  const sequence = context.getSequence();
  const next = {generateNext: {probabilities: true, options: {temperature: 0}}};
  const out = await sequence.controlledEvaluate(args.tokens.map((t) => [t, next]));
  const logprobs = out.map((item, pos) => row(item?.next?.probabilities, pos));
  const greedy = [];
  let last = logprobs[logprobs.length - 1];
  for (let i = 0; i < args.generate; i++) {
    const id = argmax(last);
    greedy.push(id);
    const step = await sequence.controlledEvaluate([[id, next]]);
    last = row(step[0]?.next?.probabilities, args.tokens.length + i);
  }
  process.stdout.write(JSON.stringify({vocab: logprobs[0].length, logprobs, greedy}) + "\n");
  await context.dispose();
  await model.dispose();
  await llama.dispose();
} catch (err) {
  console.error(`forward.mjs: ${err.stack || err}`);
  process.exit(1);
}
