// Package engine is the browser build's session logic, free of syscall/js
// so that it is tested natively and under Node alike: one base model loaded
// from bytes (optionally NF4-quantized, a QLoRA base), at most one adapter
// of any PEFT method graft implements trained on a person's examples,
// generation with or without it, and the adapter's export to and import
// from PEFT files or a msgpack bundle.
//
// Training is train.Run's: a TrainRequest only carries a train.Spec (whole,
// or in the page's short fields) and Train relays Run's step events, so the
// page trains exactly what graft train does with the same Spec.
//
// wasm/browser (GOOS=js) exposes an Engine to JavaScript; bindings/js runs
// that in a Web Worker.
package engine
