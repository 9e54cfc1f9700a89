// The demo page: load stories260K, train an adapter on the person's
// sentences, plot the loss live, compare generations, download the adapter.
import { Graft } from "/graft/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// window.demo is the page's state, read by the Playwright test.
const demo = (window.demo = { phase: "loading", losses: [], methods: [], choices: {}, backend: null, error: null, firstStepMs: null, stepsPerSec: null, before: null, after: null, graft: null, Graft });

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

async function generateBoth() {
  const g = demo.graft, prompt = $("prompt").value;
  $("generate").disabled = true;
  try {
    const base = await g.generate(prompt, { maxTokens: 60, adapter: false });
    demo.before = base.text;
    $("out-base").textContent = prompt + base.text;
    if ($("dl-msgpack").disabled) return; // no adapter yet
    const tuned = await g.generate(prompt, { maxTokens: 60 });
    demo.after = tuned.text;
    $("out-tuned").textContent = prompt + tuned.text;
  } finally {
    $("generate").disabled = false;
  }
}

let abort = null;

async function train() {
  const g = demo.graft;
  const steps = Number($("steps").value) || 40;
  const lr = Number($("lr").value) || undefined;
  abort = new AbortController();
  demo.losses = [];
  demo.firstStepMs = null;
  for (const id of ["train", "generate", "dl-msgpack", "dl-peft", "import"]) $(id).disabled = true;
  $("stop").disabled = false;
  setStatus("Training…", "training");
  drawPlot([], steps);
  const choice = demo.choices[$("method").value];
  try {
    const res = await g.train({
      // A line or two per example: 64 tokens hold one, where graft's
      // default rows of 256 would be mostly padding.
      ...choice, examples: examples(), steps, lr, seqLen: 64, signal: abort.signal,
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
  await generateBoth();
  demo.phase = "trained";
}

// fillMethods lists every method graft trains (its method registry) in
// the picker, DoRA as LoRA's variant beside it and a mixed stack after
// them; the soft prompt stays the default choice.
async function fillMethods(g) {
  const sel = $("method");
  demo.methods = await g.methods();
  demo.choices = {};
  sel.replaceChildren();
  const add = (value, label, title, choice) => {
    demo.choices[value] = choice;
    sel.append(Object.assign(document.createElement("option"), { value, textContent: label, title }));
  };
  for (const m of demo.methods) {
    add(m.name, `${m.name} (lr ${m.lr})`, m.summary, { method: m.name });
    if (m.name === "lora") add("lora+dora", `lora with DoRA (lr ${m.lr})`, "DoRA: LoRA with a trainable magnitude per output", { method: "lora", options: { use_dora: true } });
  }
  // A mixed stack, trained together: LoRA with prefix tuning.
  add("lora+prefix-tuning", "lora + prefix-tuning (a mixed stack)", "LoRA and prefix tuning on the model at once, trained together", { method: "lora+prefix-tuning" });
  sel.value = "prompt-tuning";
  sel.disabled = false;
}

async function main() {
  try {
    // ?quantize=nf4 loads an NF4 base: LoRA on it is QLoRA.
    const g = await Graft.load({ modelURL: "/models/stories260K/stories260K.gguf", backend: params.get("backend") || "auto", quantize: params.get("quantize") || undefined });
    demo.graft = g;
    await fillMethods(g);
    demo.backend = g.backend;
    $("backend").textContent = g.backend === "webgpu" ? "WebGPU" : "CPU";
    $("backend").title = g.info.backendNote || "";
    setStatus(`${g.info.name}: ${g.info.params.toLocaleString()} parameters, ready.`, "ready");
    for (const id of ["train", "generate", "import"]) $(id).disabled = false;
    drawPlot([], Number($("steps").value));
    await generateBoth();
  } catch (e) {
    return fail(e);
  }
}

$("train").onclick = () => train().catch(fail);
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
  } catch (err) {
    fail(err);
  }
};

main();
