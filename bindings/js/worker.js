// The worker that runs graft.wasm: a module Web Worker in browsers, a
// worker_threads Worker under Node. It owns the Go runtime; index.js talks
// to it with messages {id, op, args} and gets back {id, value} or
// {id, error}, plus {id, progress} while training.

const inBrowser = typeof self !== "undefined" && typeof self.postMessage === "function" && typeof WorkerGlobalScope !== "undefined";
const port = inBrowser ? self : (await import("node:worker_threads")).parentPort;

function send(msg, transfer) {
  port.postMessage(msg, transfer || []);
}

// bytesFrom returns the bytes of a URL (http(s):, blob:, data:, file: under
// Node) or passes bytes through.
async function bytesFrom(src, what) {
  if (src instanceof Uint8Array) return src;
  if (src instanceof ArrayBuffer) return new Uint8Array(src);
  if (typeof src !== "string") throw new Error(`${what}: give a URL or bytes`);
  if (src.startsWith("file:")) {
    const { readFile } = await import("node:fs/promises");
    try {
      return new Uint8Array(await readFile(new URL(src)));
    } catch (e) {
      throw new Error(`${what} ${src}: ${e.message}`);
    }
  }
  let res;
  try {
    res = await fetch(src);
  } catch (e) {
    throw new Error(`${what} ${src}: fetch failed: ${e.message}`);
  }
  if (!res.ok) throw new Error(`${what} ${src}: HTTP ${res.status} ${res.statusText}`);
  return new Uint8Array(await res.arrayBuffer());
}

let api = null; // globalThis.graftGo once the Go program runs

async function start({ wasm, wasmExecURL }) {
  await import(wasmExecURL); // defines globalThis.Go
  const bytes = await bytesFrom(wasm, "wasm");
  const go = new globalThis.Go();
  let module;
  try {
    module = await WebAssembly.instantiate(bytes, go.importObject);
  } catch (e) {
    throw new Error(`wasm: not a graft.wasm this browser can run: ${e.message}`);
  }
  // graft's WebAssembly SIMD128 kernels (wasm/simd) compute on Go's
  // memory in place: the Go side instantiates them on this memory.
  globalThis.graftGoMemory = module.instance.exports.mem;
  const ready = new Promise((resolve) => { globalThis.graftGoReady = resolve; });
  go.run(module.instance).then(() => {
    send({ id: 0, fatal: "graft.wasm exited" });
  });
  await ready;
  api = globalThis.graftGo;
}

const ops = {
  async init(args) {
    await start(args);
    return null;
  },
  async load({ model, name, backend, options }) {
    const bytes = await bytesFrom(model, "model");
    return JSON.parse(await api.load(bytes, name, backend, JSON.stringify(options || {})));
  },
  methods() {
    return JSON.parse(api.methods());
  },
  async train({ request }, id) {
    const onProgress = (json) => send({ id, progress: JSON.parse(json) });
    return JSON.parse(await api.train(JSON.stringify(request), onProgress));
  },
  cancelTrain() {
    return api.cancelTrain();
  },
  async generate({ request }) {
    return JSON.parse(await api.generate(JSON.stringify(request)));
  },
  async evaluate({ request }) {
    return JSON.parse(await api.evaluate(JSON.stringify(request)));
  },
  async logits({ prompt }) {
    return api.logits(prompt);
  },
  async exportAdapter({ format }) {
    return api.exportAdapter(format);
  },
  async importAdapter({ data, name }) {
    return api.importAdapter(data, name);
  },
  async dropAdapter() {
    return api.dropAdapter();
  },
  async dispose() {
    return api ? api.dispose() : undefined;
  },
};

async function handle(msg) {
  const { id, op, args } = msg;
  const f = ops[op];
  if (!f) {
    send({ id, error: { name: "Error", message: `graft worker: unknown operation ${op}` } });
    return;
  }
  if (op !== "init" && !api) {
    send({ id, error: { name: "Error", message: "graft worker: not started" } });
    return;
  }
  try {
    const value = await f(args || {}, id);
    const transfer = [];
    if (value instanceof Uint8Array || value instanceof Float32Array) transfer.push(value.buffer);
    send({ id, value }, transfer);
  } catch (e) {
    // The Go side marks a cancelled run with an "AbortError: " prefix.
    const message = String(e && e.message ? e.message : e);
    const abort = message.startsWith("AbortError: ");
    send({ id, error: { name: abort ? "AbortError" : "Error", message: abort ? message.slice(12) : message } });
  }
}

if (inBrowser) {
  self.onmessage = (e) => handle(e.data);
} else {
  port.on("message", handle);
}
