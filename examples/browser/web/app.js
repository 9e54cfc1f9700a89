// The demo page: load stories260K, train an adapter on the person's
// sentences, plot the loss live, compare generations (marking the words
// the story took from the sentences), check on held-out stories that the
// adapter still tells stories, download the adapter.
import { Graft } from "/graft/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// window.demo is the page's state, read by the Playwright test.
const demo = (window.demo = { phase: "loading", losses: [], methods: [], choices: {}, presets: null, backend: null, error: null, firstStepMs: null, stepsPerSec: null, before: null, after: null, newWords: [], heldOut: null, timings: null, graft: null, Graft });

function setStatus(text, phase) {
  $("status").textContent = text;
  if (phase) demo.phase = phase;
}

function fail(err) {
  console.error(err);
  demo.error = err.message;
  setStatus(`Error: ${err.message}`, "error");
}

function drawPlot(losses, total) {
  const c = $("plot"), ctx = c.getContext("2d");
  const w = c.width, h = c.height, pad = 34;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#e5e2da";
  ctx.fillStyle = "#667085";
  ctx.font = "12px system-ui";
  ctx.beginPath();
  ctx.moveTo(pad, 8); ctx.lineTo(pad, h - pad); ctx.lineTo(w - 8, h - pad);
  ctx.stroke();
  if (losses.length === 0) {
    ctx.fillText("the loss appears here while training", pad + 12, h / 2);
    return;
  }
  const hi = Math.max(...losses), lo = Math.min(...losses), span = hi - lo || 1;
  const x = (i) => pad + ((w - pad - 12) * i) / Math.max(total - 1, 1);
  const y = (v) => 10 + ((h - pad - 18) * (hi - v)) / span;
  ctx.fillText(hi.toFixed(2), 2, y(hi) + 4);
  ctx.fillText(lo.toFixed(2), 2, y(lo) + 4);
  ctx.fillText(`step ${losses.length}/${total}`, w - 110, h - 10);
  ctx.strokeStyle = "#6b4eff";
  ctx.lineWidth = 2.5;
  ctx.lineJoin = "round";
  ctx.beginPath();
  losses.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
}

function download(name, bytes, type = "application/octet-stream") {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const examples = () => $("examples").value.split("\n").map((s) => s.trim()).filter(Boolean);

// newContentWords lists the words of after that the person's sentences use
// and before does not: four letters or more and not a stopword, so that
// "the" or "about" do not count as picking up a style. The Go and the
// Playwright tests count personalization the same way.
function newContentWords(sentences, before, after) {
  const words = (t) => new Set(t.toLowerCase().match(/[a-z]+/g) || []);
  const theirs = words(sentences.join(" ")), had = words(before), stop = new Set(demo.presets.stopwords);
  return [...words(after)].filter((w) => w.length >= 4 && theirs.has(w) && !had.has(w) && !stop.has(w)).sort();
}

// showStory writes text into el, each of the marked words in a <mark>.
function showStory(el, text, marked) {
  el.replaceChildren();
  const mark = new Set(marked);
  for (const part of text.split(/([A-Za-z]+)/)) {
    el.append(mark.has(part.toLowerCase()) ? Object.assign(document.createElement("mark"), { textContent: part }) : part);
  }
}

function setCheck(id, text, good) {
  $(id).textContent = text;
  $(id).className = `check ${good === undefined ? "" : good ? "good" : "bad"}`;
}

// heldOutTexts are TinyStories passages the adapter never sees (heldout.txt);
// baseLoss is the base model's loss on them, scored once.
let heldOutTexts = null, baseLoss = null;

// checkHeldOut scores the held-out stories with the adapter: a style
// adapter that makes them much less likely has traded storytelling for
// the sentences (it starts writing gibberish).
async function checkHeldOut() {
  const g = demo.graft, limit = demo.presets.maxLossRise;
  if (baseLoss === null) baseLoss = (await g.evaluate(heldOutTexts, { adapter: false })).loss;
  const adapter = (await g.evaluate(heldOutTexts)).loss, rise = adapter / baseLoss - 1;
  demo.heldOut = { base: baseLoss, adapter, rise };
  const pct = `${rise >= 0 ? "+" : ""}${(100 * rise).toFixed(1)}%`;
  setCheck("heldout", rise <= limit
    ? `Still a storyteller: on ${heldOutTexts.length} held-out TinyStories passages the loss is ${adapter.toFixed(3)} with your adapter, ${baseLoss.toFixed(3)} without (${pct}, within ${100 * limit}%).`
    : `Forgetting how to tell stories: on held-out TinyStories passages the loss is ${adapter.toFixed(3)} with your adapter, ${baseLoss.toFixed(3)} without (${pct}, over ${100 * limit}%). Try fewer steps or a lower learning rate.`, rise <= limit);
}

let baseStory = { prompt: null, text: null };

async function generateBoth() {
  const g = demo.graft, prompt = $("prompt").value, maxTokens = demo.presets.maxTokens;
  $("generate").disabled = true;
  try {
    // The base model's story depends on the prompt alone (greedy
    // decoding): generated once per prompt.
    if (baseStory.prompt !== prompt) baseStory = { prompt, text: (await g.generate(prompt, { maxTokens, adapter: false })).text };
    const base = baseStory;
    demo.before = base.text;
    $("out-base").textContent = prompt + base.text;
    if ($("dl-msgpack").disabled) return; // no adapter yet
    const tuned = await g.generate(prompt, { maxTokens });
    demo.after = tuned.text;
    demo.newWords = newContentWords(examples(), prompt + base.text, prompt + tuned.text);
    showStory($("out-tuned"), prompt + tuned.text, demo.newWords);
    setCheck("words", demo.newWords.length
      ? `Words from your sentences in the story: ${demo.newWords.join(", ")}.`
      : "No word of your sentences made it into this story yet: train longer, or try another seed.", demo.newWords.length > 0);
  } finally {
    $("generate").disabled = false;
  }
}

let abort = null;

// request is what Train sends for the chosen method: a personalizing
// preset's settings (presets.json), or graft's defaults for the others;
// the steps, learning rate and seed fields override either.
function request() {
  const choice = demo.choices[$("method").value];
  const ex = examples();
  const req = choice.preset
    ? { ...choice.preset.request, ...(choice.preset.initTextFromFirstExample && ex.length ? { initText: ex[0] } : {}) }
    // A line or two per example: 64 tokens hold one, where graft's
    // default rows of 256 would be mostly padding.
    : { ...choice.request, seqLen: 64 };
  req.examples = ex;
  // graft has no default length: the page always sends its steps.
  req.steps = Number($("steps").value) || req.steps || 30;
  const lr = Number($("lr").value);
  if (lr > 0) req.lr = lr;
  req.seed = Number($("seed").value) || 1;
  return req;
}

async function train() {
  const g = demo.graft;
  const req = request();
  abort = new AbortController();
  demo.losses = [];
  demo.firstStepMs = null;
  demo.newWords = [];
  demo.heldOut = null;
  setCheck("words", "–");
  setCheck("heldout", "–");
  for (const id of ["train", "generate", "dl-msgpack", "dl-peft", "import"]) $(id).disabled = true;
  $("stop").disabled = false;
  setStatus("Training…", "training");
  drawPlot([], req.steps);
  const started = performance.now();
  try {
    const res = await g.train({
      ...req, signal: abort.signal,
      onProgress: (p) => {
        if (demo.firstStepMs === null) demo.firstStepMs = performance.now();
        demo.losses.push(p.loss);
        demo.stepsPerSec = p.step / (p.elapsedMs / 1000);
        drawPlot(demo.losses, p.totalSteps);
        $("stat-step").textContent = `${p.step}/${p.totalSteps}`;
        $("stat-loss").textContent = p.loss.toFixed(3);
        $("stat-tps").textContent = Math.round(p.tokensPerSec).toLocaleString();
        $("stat-sps").textContent = demo.stepsPerSec.toFixed(1);
      },
    });
    demo.result = res;
    setStatus(`Trained ${res.steps} steps: loss ${res.losses[0].toFixed(2)} → ${res.losses.at(-1).toFixed(2)} (${res.params.toLocaleString()} trainable values).`);
  } catch (e) {
    if (e.name !== "AbortError") return fail(e);
    setStatus("Stopped. The adapter trained so far is kept.");
  } finally {
    $("stop").disabled = true;
    for (const id of ["train", "generate", "import"]) $(id).disabled = false;
  }
  $("dl-msgpack").disabled = $("dl-peft").disabled = false;
  const trained = performance.now();
  await generateBoth();
  const generated = performance.now();
  await checkHeldOut();
  demo.timings = { trainMs: Math.round(trained - started), generateMs: Math.round(generated - trained), heldOutMs: Math.round(performance.now() - generated) };
  demo.phase = "trained";
}

// fillMethods fills the picker: first the methods tuned to personalize
// this page (presets.json: LoRA, the default, and prompt tuning), then
// every other method graft trains (its method registry, DoRA as LoRA's
// variant and a mixed stack), with graft's defaults and no promise.
async function fillMethods(g) {
  const sel = $("method");
  demo.methods = await g.methods();
  demo.choices = {};
  sel.replaceChildren();
  const group = (label) => sel.appendChild(Object.assign(document.createElement("optgroup"), { label }));
  const add = (parent, value, label, title, choice) => {
    demo.choices[value] = choice;
    parent.append(Object.assign(document.createElement("option"), { value, textContent: label, title }));
  };
  const tuned = group("Personalize: tuned for this page");
  for (const p of demo.presets.personalize) add(tuned, p.value, `${p.label} (${p.request.steps} steps, lr ${p.request.lr})`, p.title, { preset: p });
  const others = group("More methods: graft's defaults, not tuned here");
  for (const m of demo.methods) {
    if (!demo.choices[m.name]) add(others, m.name, `${m.name} (lr ${m.lr})`, m.summary, { request: { method: m.name }, lr: m.lr });
    if (m.name === "lora") add(others, "lora+dora", `lora with DoRA (lr ${m.lr})`, "DoRA: LoRA with a trainable magnitude per output", { request: { method: "lora", options: { use_dora: true } }, lr: m.lr });
  }
  // A mixed stack, trained together: LoRA with prefix tuning.
  add(others, "lora+prefix-tuning", "lora + prefix-tuning (a mixed stack)", "LoRA and prefix tuning on the model at once, trained together", { request: { method: "lora+prefix-tuning" } });
  sel.value = demo.presets.default;
  sel.disabled = false;
  methodChanged();
}

// methodChanged puts the chosen method's steps and learning rate in the
// fields, and says what the page promises for it.
function methodChanged() {
  const choice = demo.choices[$("method").value];
  const p = choice.preset;
  $("steps").value = p ? p.request.steps : 40;
  $("lr").value = p ? p.request.lr : "";
  $("lr").placeholder = choice.lr ? `auto (${choice.lr})` : "auto";
  $("method-note").textContent = p
    ? `${p.title}. With the sentences above, these settings put words of them into the story in at least 4 seeds of 5, while the loss on held-out stories rises by at most ${100 * demo.presets.maxLossRise}%.`
    : demo.presets.notes[choice.request.method] || "Trains with graft's defaults for this method. They are not tuned for a few sentences: the story may not change, or may turn to gibberish.";
  drawPlot([], Number($("steps").value));
}

async function main() {
  try {
    // ?quantize=nf4 loads an NF4 base: LoRA on it is QLoRA.
    demo.presets = await (await fetch("presets.json")).json();
    heldOutTexts = (await (await fetch(demo.presets.heldOut)).text()).split("\n").map((s) => s.trim()).filter(Boolean);
    if (!$("examples").value) $("examples").value = demo.presets.examples.join("\n");
    if (!$("prompt").value) $("prompt").value = demo.presets.prompt;
    // ?simd=0 runs the CPU backend on the portable Go kernels instead of
    // graft's WebAssembly SIMD128 ones (to compare them).
    const g = await Graft.load({ modelURL: "/models/stories260K/stories260K.gguf", backend: params.get("backend") || "auto", quantize: params.get("quantize") || undefined, simd: params.get("simd") !== "0" });
    demo.graft = g;
    await fillMethods(g);
    demo.backend = g.backend;
    $("backend").textContent = g.backend === "webgpu" ? "WebGPU" : "CPU";
    $("backend").title = [g.info.backendNote, g.info.kernels && `kernels: ${g.info.kernels}`, g.info.kernelsNote].filter(Boolean).join("; ");
    setStatus(`${g.info.name}: ${g.info.params.toLocaleString()} parameters, ready.`, "ready");
    for (const id of ["train", "generate", "import"]) $(id).disabled = false;
    await generateBoth();
  } catch (e) {
    return fail(e);
  }
}

$("train").onclick = () => train().catch(fail);
$("method").onchange = methodChanged;
$("stop").onclick = () => abort?.abort();
$("generate").onclick = () => generateBoth().catch(fail);
$("dl-msgpack").onclick = async () => download("adapter.msgpack", await demo.graft.exportAdapter("msgpack"));
$("dl-peft").onclick = async () => {
  const files = await demo.graft.exportAdapter("peft");
  for (const [name, bytes] of Object.entries(files)) download(name, bytes);
};
$("import").onchange = async (e) => {
  try {
    const list = [...e.target.files];
    const data = list.length === 1 && list[0].name.endsWith(".msgpack")
      ? new Uint8Array(await list[0].arrayBuffer())
      : Object.fromEntries(await Promise.all(list.map(async (f) => [f.name, new Uint8Array(await f.arrayBuffer())])));
    const type = await demo.graft.importAdapter(data, list.map((f) => f.name).join(", "));
    setStatus(`Loaded a ${type} adapter.`);
    $("dl-msgpack").disabled = $("dl-peft").disabled = false;
    await generateBoth();
    await checkHeldOut();
  } catch (err) {
    fail(err);
  }
};

main();
