// Package engine is the browser build's session logic, free of syscall/js
// so that it is tested natively and under Node alike: one base model loaded
// from bytes, at most one adapter (prompt tuning or IA³) trained on a
// person's examples, generation with or without it, and the adapter's
// export to and import from PEFT files or a msgpack bundle.
//
// wasm/browser (GOOS=js) exposes an Engine to JavaScript; bindings/js runs
// that in a Web Worker.
package engine
