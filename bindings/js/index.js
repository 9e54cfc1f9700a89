// @graft-ml/graft: fine-tune a language model in the page with any PEFT
// method graft implements (LoRA, DoRA, QLoRA, VeRA, IA³, prompt and
// prefix tuning, bottleneck adapters, ...). All work runs in a worker (a
// Web Worker in browsers, worker_threads under Node), so the page never
// freezes. No runtime dependencies.

const here = (p) => new URL(p, import.meta.url).href;

const isNode = typeof process !== "undefined" && !!(process.versions && process.versions.node) && typeof window === "undefined";

// Transport wraps a Web Worker or a worker_threads Worker in one shape.
async function openWorker(workerURL) {
  if (!isNode && typeof Worker !== "undefined") {
    const w = new Worker(workerURL, { type: "module", name: "graft" });
    return {
      post: (m, t) => w.postMessage(m, t),
      onMessage: (f) => { w.onmessage = (e) => f(e.data); },
      onError: (f) => { w.onerror = (e) => { e.preventDefault?.(); f(new Error(`graft worker: ${e.message || "failed to start"}`)); }; },
      terminate: () => w.terminate(),
    };
  }
  const { Worker: NodeWorker } = await import("node:worker_threads");
  const w = new NodeWorker(new URL(workerURL));
  return {
    post: (m, t) => w.postMessage(m, t),
    onMessage: (f) => w.on("message", f),
    onError: (f) => w.on("error", (e) => f(new Error(`graft worker: ${e.message}`))),
    terminate: () => w.terminate(),
  };
}

function toError(err) {
  if (err.name === "AbortError") {
    return typeof DOMException !== "undefined" ? new DOMException(err.message, "AbortError") : Object.assign(new Error(err.message), { name: "AbortError" });
  }
  return new Error(err.message);
}

function abortError(signal) {
  if (signal.reason instanceof Error) return signal.reason;
  return typeof DOMException !== "undefined" ? new DOMException("the operation was aborted", "AbortError") : Object.assign(new Error("the operation was aborted"), { name: "AbortError" });
}

const asURL = (u) => (u instanceof URL ? u.href : u);

// bytesOrURL keeps bytes as bytes and makes URLs absolute against the
// page (or the working directory under Node), since the worker resolves
// them from elsewhere.
function bytesOrURL(src, what) {
  if (src instanceof Uint8Array || src instanceof ArrayBuffer) return src;
  if (typeof src === "string" || src instanceof URL) {
    const base = typeof location !== "undefined" ? location.href : `file://${process.cwd()}/`;
    return new URL(asURL(src), base).href;
  }
  throw new TypeError(`Graft.load: ${what} must be a URL, a string, a Uint8Array or an ArrayBuffer`);
}

export class Graft {
  #t;
  #next = 1;
  #pending = new Map();
  #dead = null;

  /** @internal use Graft.load */
  constructor(transport, info) {
    this.#t = transport;
    this.info = info;
  }

  /** Which backend the model runs on: "webgpu" or "cpu". */
  get backend() {
    return this.info.backend;
  }

  static async load(opts = {}) {
    const { wasmURL, wasm, modelURL, model, modelName, backend = "auto", workerURL, signal, quantize, doubleQuant, simd } = opts;
    const modelSrc = model ?? modelURL;
    if (modelSrc == null) throw new TypeError("Graft.load: give modelURL (or model bytes)");
    if (!["auto", "webgpu", "cpu"].includes(backend)) throw new TypeError(`Graft.load: backend ${JSON.stringify(backend)}: want "auto", "webgpu" or "cpu"`);
    if (quantize !== undefined && quantize !== "nf4") throw new TypeError(`Graft.load: quantize ${JSON.stringify(quantize)}: want "nf4" (QLoRA) or none`);
    signal?.throwIfAborted();
    const t = await openWorker(asURL(workerURL) ?? here("./worker.js"));
    const g = new Graft(t, null);
    t.onMessage((m) => g.#receive(m));
    t.onError((e) => g.#fail(e));
    const onAbort = () => g.dispose();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await g.#call("init", { wasm: bytesOrURL(wasm ?? wasmURL ?? here("./dist/graft.wasm"), "wasmURL"), wasmExecURL: here("./dist/wasm_exec.js") });
      const name = modelName ?? (typeof modelSrc === "string" || modelSrc instanceof URL ? asURL(modelSrc).split("/").pop() : "model.gguf");
      g.info = await g.#call("load", { model: bytesOrURL(modelSrc, "modelURL"), name, backend, options: { quantize, doubleQuant, simd } });
    } catch (e) {
      g.dispose();
      if (signal?.aborted) throw abortError(signal);
      throw e;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    return g;
  }

  #receive(m) {
    if (m.fatal) return this.#fail(new Error(`graft worker: ${m.fatal}`));
    const p = this.#pending.get(m.id);
    if (!p) return;
    if (m.progress) {
      p.onProgress?.(m.progress);
      return;
    }
    this.#pending.delete(m.id);
    if (m.error) p.reject(toError(m.error));
    else p.resolve(m.value);
  }

  #fail(err) {
    this.#dead = err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.#t?.terminate();
  }

  #call(op, args, onProgress) {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      const transfer = [];
      for (const v of Object.values(args || {})) if (v instanceof ArrayBuffer) transfer.push(v);
      this.#t.post({ id, op, args }, transfer);
    });
  }

  /** Every PEFT method train accepts, from graft's method registry. */
  async methods() {
    return this.#call("methods", {});
  }

  async train(opts = {}) {
    const { signal, onProgress, ...request } = opts;
    const texts = (v) => Array.isArray(v) && v.every((e) => typeof e === "string");
    if (request.examples !== undefined ? !texts(request.examples) : !request.spec) {
      throw new TypeError("train: examples must be an array of strings");
    }
    if (request.evalExamples !== undefined && !texts(request.evalExamples)) {
      throw new TypeError("train: evalExamples must be an array of strings");
    }
    signal?.throwIfAborted();
    const onAbort = () => this.#call("cancelTrain", {}).catch(() => {});
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.#call("train", { request }, onProgress);
    } catch (e) {
      if (signal?.aborted && e.name === "AbortError") throw abortError(signal);
      throw e;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async generate(prompt, opts = {}) {
    if (typeof prompt !== "string") throw new TypeError("generate: prompt must be a string");
    const { adapter = true, ...rest } = opts;
    return this.#call("generate", { request: { prompt, ...rest, noAdapter: !adapter } });
  }

  async evaluate(texts, opts = {}) {
    if (!Array.isArray(texts) || !texts.every((t) => typeof t === "string")) throw new TypeError("evaluate: texts must be an array of strings");
    const { adapter = true } = opts;
    return this.#call("evaluate", { request: { texts, noAdapter: !adapter } });
  }

  async logits(prompt) {
    if (typeof prompt !== "string") throw new TypeError("logits: prompt must be a string");
    return this.#call("logits", { prompt });
  }

  async exportAdapter(format = "peft") {
    if (format !== "peft" && format !== "msgpack") throw new TypeError(`exportAdapter: format ${JSON.stringify(format)}: want "peft" or "msgpack"`);
    return this.#call("exportAdapter", { format });
  }

  async importAdapter(data, name = "adapter") {
    if (data instanceof ArrayBuffer) data = new Uint8Array(data);
    const isFiles = data && typeof data === "object" && !(data instanceof Uint8Array) && Object.values(data).every((v) => v instanceof Uint8Array);
    if (!(data instanceof Uint8Array) && !isFiles) {
      throw new TypeError("importAdapter: give a msgpack bundle (Uint8Array) or PEFT files ({name: Uint8Array})");
    }
    return this.#call("importAdapter", { data, name });
  }

  async dropAdapter() {
    return this.#call("dropAdapter", {});
  }

  dispose() {
    if (this.#dead) return;
    this.#fail(new Error("graft: disposed"));
  }
}

export default Graft;
