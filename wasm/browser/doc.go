//go:build js && wasm

// Command browser is graft in a web page: built with GOOS=js GOARCH=wasm
// into graft.wasm, it runs inside a Web Worker (bindings/js starts it) and
// installs globalThis.graftGo, whose functions take and return JSON strings
// and byte arrays and answer with Promises. The session logic lives in
// wasm/browser/engine; this package is only the JavaScript boundary and the
// choice of backend (WebGPU through the gpu package, or the CPU).
//
// Every call returns a Promise and does its work in a goroutine: blocking
// inside a js.FuncOf callback would deadlock Go's event loop. Training
// yields to the worker's event loop between steps so that a cancel message
// is seen.
package main
