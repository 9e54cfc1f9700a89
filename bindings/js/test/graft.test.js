// Node's test runner: graft.wasm under Node (worker_threads), CPU backend.
// Build dist/ first: make wasm-browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Graft } from "../index.js";

const modelURL = new URL("../../../models/stories260K/stories260K.gguf", import.meta.url);
const examples = [
  "The purple robot hummed a song about the moon and the moon hummed back.",
  "The purple robot found a shiny stone and hummed a song about it.",
  "Every night the purple robot hummed to the stars until they twinkled.",
];
const prompt = "Once upon a time";

test("train, generate, export and import on the CPU", async (t) => {
  const g = await Graft.load({ modelURL, backend: "auto" });
  t.after(() => g.dispose());
  assert.equal(g.backend, "cpu", "Node has no WebGPU: auto must pick the CPU");
  assert.match(g.info.backendNote, /WebGPU unavailable/);
  assert.equal(g.info.vocab, 512);
  assert.equal(g.info.kernels, "wasm-simd128", `the SIMD128 kernels are not in use: ${g.info.kernelsNote}`);

  const before = await g.generate(prompt, { maxTokens: 24 });
  const progress = [];
  const res = await g.train({ method: "prompt-tuning", examples, steps: 12, batch: 3, seqLen: 32, onProgress: (p) => progress.push(p) });
  assert.equal(res.peftType, "PROMPT_TUNING");
  assert.equal(progress.length, 12);
  assert.deepEqual(progress.map((p) => p.step), [...Array(12).keys()].map((i) => i + 1));
  assert.ok(progress.every((p) => p.tokensPerSec > 0 && Number.isFinite(p.loss)));
  assert.ok(res.losses.at(-1) < res.losses[0], `loss did not fall: ${res.losses}`);

  const after = await g.generate(prompt, { maxTokens: 24 });
  assert.equal(after.usedAdapter, true);
  assert.notEqual(after.text, before.text);
  const plain = await g.generate(prompt, { maxTokens: 24, adapter: false });
  assert.equal(plain.text, before.text, "without the adapter the base model's text comes back");
  // The adapter predicts its own examples better than the base model does.
  const tuned = await g.evaluate(examples), base = await g.evaluate(examples, { adapter: false });
  assert.ok(tuned.usedAdapter && !base.usedAdapter && tuned.tokens === base.tokens && tuned.tokens > 0);
  assert.ok(tuned.loss < base.loss, `loss with the adapter ${tuned.loss}, without ${base.loss}`);
  await assert.rejects(g.evaluate([]), /no texts/);

  const want = await g.logits(prompt);
  assert.ok(want instanceof Float32Array && want.length % 512 === 0 && want.length > 0);
  const files = await g.exportAdapter("peft");
  assert.deepEqual(Object.keys(files).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  assert.equal(JSON.parse(new TextDecoder().decode(files["adapter_config.json"])).peft_type, "PROMPT_TUNING");
  const bundle = await g.exportAdapter("msgpack");
  assert.ok(bundle instanceof Uint8Array && bundle.length > 0);

  // Into a second instance, from the model's bytes this time.
  const g2 = await Graft.load({ model: new Uint8Array(await readFile(modelURL)), backend: "cpu" });
  t.after(() => g2.dispose());
  for (const data of [files, bundle]) {
    assert.equal(await g2.importAdapter(data), "PROMPT_TUNING");
    assert.deepEqual(await g2.logits(prompt), want);
  }
  await g2.dropAdapter();
  assert.equal((await g2.generate(prompt, { maxTokens: 24 })).text, before.text);
});

test("IA³ trains and changes the generation", async (t) => {
  const g = await Graft.load({ modelURL, backend: "cpu" });
  t.after(() => g.dispose());
  const before = await g.generate(prompt, { maxTokens: 24 });
  const res = await g.train({ method: "ia3", examples, steps: 12, batch: 3, seqLen: 32 });
  assert.equal(res.peftType, "IA3");
  assert.ok(res.losses.at(-1) < res.losses[0]);
  assert.notEqual((await g.generate(prompt, { maxTokens: 24 })).text, before.text);
});

test("every registered method trains, exports and imports", async (t) => {
  const g = await Graft.load({ modelURL, backend: "cpu" });
  t.after(() => g.dispose());
  const methods = await g.methods();
  const names = methods.map((m) => m.name);
  for (const want of ["houlsby", "ia3", "lora", "pfeiffer", "prefix-tuning", "prompt-tuning", "vera"]) {
    assert.ok(names.includes(want), `methods() lacks ${want}: ${names}`);
  }
  assert.ok(methods.every((m) => m.peftType && m.summary && m.lr > 0), JSON.stringify(methods));
  const g2 = await Graft.load({ modelURL, backend: "cpu" });
  t.after(() => g2.dispose());
  const runs = methods.map((m) => ({ name: m.name, peftType: m.peftType, request: { method: m.name } }));
  runs.push({ name: "dora", peftType: "LORA", request: { method: "lora", options: { use_dora: true } } });
  runs.push({ name: "lora+prefix-tuning", peftType: "MIXED", request: { method: "lora+prefix-tuning" } });
  for (const { name, peftType, request } of runs) {
    const res = await g.train({ ...request, examples, evalExamples: [examples[0]], steps: 2, batch: 2, seqLen: 32 });
    assert.equal(res.peftType, peftType, name);
    assert.equal(res.losses.length, 2, name);
    assert.ok(res.losses.every(Number.isFinite) && res.params > 0 && res.evalBefore > 0 && res.evalAfter > 0, `${name}: ${JSON.stringify(res)}`);
    // The effective spec: a stack's parts resolved, each with its options.
    const ran = res.spec.stack ? res.spec.stack.map((p) => p.method).join("+") : res.spec.method;
    assert.equal(ran, request.method, name);
    assert.ok(res.spec.lr > 0, name);
    const want = await g.logits(prompt);
    assert.equal(await g2.importAdapter(await g.exportAdapter("msgpack")), peftType, name);
    assert.deepEqual(await g2.logits(prompt), want, `${name}: the imported adapter's logits differ`);
  }
});

test("QLoRA: LoRA over an NF4 base", async (t) => {
  const g = await Graft.load({ modelURL, backend: "cpu", quantize: "nf4" });
  t.after(() => g.dispose());
  assert.equal(g.info.quantized, "nf4");
  const base = await Graft.load({ modelURL, backend: "cpu" });
  t.after(() => base.dispose());
  assert.notDeepEqual(await g.logits(prompt), await base.logits(prompt), "the NF4 base computes the same logits as the float one");
  const res = await g.train({ spec: { method: "lora", records: examples.map((text) => ({ text })), steps: 12, batch: 3, seq_len: 32 } });
  assert.equal(res.peftType, "LORA");
  assert.ok(res.losses.at(-1) < res.losses[0], `loss did not fall: ${res.losses}`);
  await assert.rejects(Graft.load({ modelURL, quantize: "q2" }), /quantize "q2"/);
});

test("an AbortSignal cancels training", async (t) => {
  const g = await Graft.load({ modelURL, backend: "cpu" });
  t.after(() => g.dispose());
  const ac = new AbortController();
  let last = 0;
  await assert.rejects(
    g.train({ method: "prompt-tuning", examples, steps: 100000, seqLen: 32, signal: ac.signal, onProgress: (p) => { last = p.step; if (p.step === 3) ac.abort(); } }),
    { name: "AbortError" },
  );
  assert.ok(last >= 3 && last < 100000, `stopped at step ${last}`);
  // The worker stays usable and the adapter trained so far is attached.
  assert.equal((await g.generate(prompt, { maxTokens: 4 })).usedAdapter, true);
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(g.train({ method: "ia3", examples, signal: pre.signal }), { name: "AbortError" });
});

test("errors reject with clear messages", async (t) => {
  await assert.rejects(Graft.load({}), /give modelURL/);
  await assert.rejects(Graft.load({ modelURL, backend: "tpu" }), /backend "tpu"/);
  await assert.rejects(Graft.load({ model: new TextEncoder().encode("not a model"), modelName: "junk.bin" }), /junk\.bin/);
  await assert.rejects(Graft.load({ modelURL: new URL("./missing.gguf", import.meta.url) }), /missing\.gguf/);
  await assert.rejects(Graft.load({ modelURL, backend: "webgpu" }), /navigator\.gpu/);

  const g = await Graft.load({ modelURL, backend: "cpu" });
  t.after(() => g.dispose());
  await assert.rejects(g.train({ method: "sorcery", examples }), /method "sorcery"/);
  await assert.rejects(g.train({ spec: { method: "lora", data: "train.jsonl" } }), /no file system/);
  await assert.rejects(g.train({ method: "ia3", examples: [] }), /no examples/);
  await assert.rejects(g.exportAdapter("peft"), /no adapter/);
  await assert.rejects(g.exportAdapter("zip"), /format "zip"/);
  await assert.rejects(g.importAdapter(new Uint8Array([1, 2, 3]), "bad.msgpack"), /bad\.msgpack/);
  await assert.rejects(g.importAdapter({ "adapter_model.safetensors": new Uint8Array(4) }), /adapter_config\.json/);
  g.dispose();
  await assert.rejects(g.generate(prompt), /disposed/);
});

test("the SIMD128 kernels give the portable Go kernels' loss, bit for bit", async (t) => {
  const simd = await Graft.load({ modelURL, backend: "cpu" });
  t.after(() => simd.dispose());
  const plain = await Graft.load({ modelURL, backend: "cpu", simd: false });
  t.after(() => plain.dispose());
  assert.equal(simd.info.kernels, "wasm-simd128");
  assert.equal(plain.info.kernels, "go");
  // A batch of whole texts: every projection, attention block, SiLU and
  // the cross-entropy go to the SIMD128 kernels, which compute a forward
  // pass in the portable kernels' operations and order (wasm/simd).
  const a = await simd.evaluate(examples), b = await plain.evaluate(examples);
  assert.equal(a.tokens, b.tokens);
  assert.equal(a.loss, b.loss, `loss ${a.loss} with the SIMD128 kernels, ${b.loss} without`);
});
