// Greedy generation throughput of llama.cpp (through node-llama-cpp) on one
// GGUF model: the peer bench/e2e measures graft's generation against.
//
//   node generate_bench.mjs --model M.gguf [--tokens 64] [--threads 2] [--prompt 1,2,3]
//                           [--max-seconds S]
//
// The prompt is given as token ids (default: BOS then a few low ids), so a
// synthetic tokenizer does not matter. All but the last prompt token are
// evaluated before the clock starts; the clock then covers --tokens
// single-token evaluations with the KV cache, each followed by a greedy
// (temperature 0) pick of the next token, which is the work graft's timed
// loop does too; an end-of-sequence token does not stop it (graft does not
// stop either). Model loading and prompt evaluation are not timed. With
// --max-seconds, generation stops once that much time has passed and the
// rate is taken over the tokens made so far ("stopped_early": true): on a
// busy machine llama.cpp's spinning threads can slow to a token a second.
//
// Output, one JSON line: {"model", "tokens", "threads", "prompt_tokens",
// "seconds", "tokens_per_s", "stopped_early", "kv_cache_type",
// "first_tokens"}. Exit status 3
// means node-llama-cpp is not installed (run `make llamacpp`).

let llamaCpp;
try {
  llamaCpp = await import("node-llama-cpp");
} catch (err) {
  console.error(`node-llama-cpp is not installed in tools/llamacpp (run \`make llamacpp\`): ${err.message}`);
  process.exit(3);
}
const {getLlama, LlamaLogLevel} = llamaCpp;

const usage = "usage: node generate_bench.mjs --model M.gguf [--tokens N] [--threads N] [--prompt 1,2,3] [--max-seconds S]";

function parseArgs(argv) {
  const args = {tokens: "64", threads: "2", prompt: "1,10,20,30,40,50,60,70", "max-seconds": "0"};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    if (!["--model", "--tokens", "--threads", "--prompt", "--max-seconds"].includes(key) || i + 1 >= argv.length) {
      throw new Error(`${usage} (bad argument ${key})`);
    }
    args[key.slice(2)] = argv[i + 1];
  }
  if (!args.model) throw new Error(`--model is required; ${usage}`);
  const positive = (name) => {
    const n = Number(args[name]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} ${JSON.stringify(args[name])} is not a positive integer`);
    return n;
  };
  args.tokens = positive("tokens");
  args.threads = positive("threads");
  args.maxSeconds = Number(args["max-seconds"]);
  if (!(args.maxSeconds >= 0)) throw new Error(`--max-seconds ${JSON.stringify(args["max-seconds"])} is not a number >= 0`);
  args.prompt = args.prompt.split(",").map((s) => {
    const t = Number(s);
    if (!Number.isInteger(t) || t < 0) throw new Error(`prompt token ${JSON.stringify(s)} is not a token id`);
    return t;
  });
  return args;
}

try {
  const args = parseArgs(process.argv.slice(2));
  const llama = await getLlama({gpu: false, build: "never", maxThreads: args.threads, logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath: args.model, gpuLayers: 0});
  for (const t of args.prompt) {
    if (t >= model.tokens.size) throw new Error(`prompt token ${t} is outside the vocabulary of ${model.tokens.size}`);
  }
  const context = await model.createContext({
    contextSize: args.prompt.length + args.tokens + 8,
    sequences: 1,
    threads: {ideal: args.threads, min: args.threads},
  });
  const sequence = context.getSequence();
  const head = args.prompt.slice(0, -1);
  if (head.length > 0) await sequence.evaluateWithoutGeneratingNewTokens(head);

  const generated = [];
  let stoppedEarly = false;
  const start = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - start) / 1e9;
  for await (const token of sequence.evaluate(args.prompt.slice(-1), {temperature: 0, yieldEogToken: true})) {
    generated.push(token);
    if (generated.length >= args.tokens) break;
    if (args.maxSeconds > 0 && elapsed() > args.maxSeconds) {
      stoppedEarly = true;
      break;
    }
  }
  const seconds = elapsed();
  if (generated.length < args.tokens && !stoppedEarly) {
    throw new Error(`generation stopped after ${generated.length} of ${args.tokens} tokens`);
  }
  process.stdout.write(JSON.stringify({
    model: args.model,
    tokens: generated.length,
    threads: args.threads,
    prompt_tokens: args.prompt.length,
    seconds,
    tokens_per_s: generated.length / seconds,
    stopped_early: stoppedEarly,
    kv_cache_type: "F16 (llama.cpp default)",
    first_tokens: generated.slice(0, 8),
  }) + "\n");
  await context.dispose();
  await model.dispose();
  await llama.dispose();
} catch (err) {
  console.error(`generate_bench.mjs: ${err.stack || err}`);
  process.exit(1);
}
