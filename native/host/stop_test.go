package host

import (
	"bytes"
	"testing"

	"github.com/graft-ml/graft/native/host/internal/wasmstop"
)

// TestDeadlineChecks: exact deadlines run the plugin with the stop flag;
// a module the instrumenter refuses (here one that already exports the
// flag's name) keeps its bytes and gets wazero's checks; cooperative
// hosts run the plugin as it is.
func TestDeadlineChecks(t *testing.T) {
	wasm, viaWazero := deadlineChecks(Plugin(), false)
	if viaWazero || bytes.Equal(wasm, Plugin()) || !bytes.Contains(wasm, []byte(wasmstop.Global)) {
		t.Fatalf("exact deadlines: %d bytes (plugin %d), via wazero %v", len(wasm), len(Plugin()), viaWazero)
	}
	if again, _ := deadlineChecks(Plugin(), false); &again[0] != &wasm[0] {
		t.Error("the instrumented plugin was not memoized")
	}
	taken := []byte("\x00asm\x01\x00\x00\x00" +
		"\x06\x06\x01\x7f\x01\x41\x00\x0b" + // a mutable i32 global
		"\x07\x0e\x01\x0a" + wasmstop.Global + "\x03\x00") // exported as graft_stop
	if wasm, viaWazero := deadlineChecks(taken, false); !viaWazero || !bytes.Equal(wasm, taken) {
		t.Fatalf("a module exporting %s: via wazero %v, bytes changed %v", wasmstop.Global, viaWazero, !bytes.Equal(wasm, taken))
	}
	if wasm, viaWazero := deadlineChecks(Plugin(), true); viaWazero || !bytes.Equal(wasm, Plugin()) {
		t.Fatal("a cooperative host does not run the plugin as it is")
	}
}
