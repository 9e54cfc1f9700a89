// Preloaded by go_js_wasm_exec: wraps WebAssembly.instantiate so that the
// memory of the instance it makes (Go's, whose exports hold mem) is
// globalThis.graftGoMemory before go.run starts the program.
"use strict";

const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async function (...args) {
  const result = await instantiate.apply(this, args);
  const instance = result instanceof WebAssembly.Instance ? result : result.instance;
  if (instance && instance.exports.mem instanceof WebAssembly.Memory) {
    globalThis.graftGoMemory = instance.exports.mem;
  }
  return result;
};
