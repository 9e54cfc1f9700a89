//go:build js

package engine

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall/js"
	"testing"

	"github.com/graft-ml/graft/internal/parity"
)

// nativeTraces runs every parity case natively: wasm cannot, so it starts
// internal/parity/nativeruns through Node's child_process, built with
// -tags purego, the portable kernels that wasm runs too, so that the
// traces must agree bit for bit.
func nativeTraces(t *testing.T) map[string]parity.Trace {
	t.Helper()
	out, err := runNative()
	if err != nil {
		t.Fatalf("native runs (go run -tags purego ./internal/parity/nativeruns): %v", err)
	}
	var traces map[string]parity.Trace
	if err := json.Unmarshal([]byte(out), &traces); err != nil {
		t.Fatalf("native runs: %v", err)
	}
	return traces
}

// runNative returns nativeruns' output. The go command runs for the
// host: this test binary's GOOS=js and GOARCH=wasm are left out of its
// environment.
func runNative() (out string, err error) {
	defer func() {
		if r := recover(); r != nil { // a thrown JavaScript error: the command failed
			err = fmt.Errorf("%v", r)
		}
	}()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		return "", err
	}
	env := js.Global().Get("Object").Call("assign", js.Global().Get("Object").New(), js.Global().Get("process").Get("env"))
	for _, k := range []string{"GOOS", "GOARCH", "GOWASM"} {
		env.Delete(k)
	}
	cp := js.Global().Call("require", "child_process")
	res := cp.Call("execFileSync", "go", []any{"run", "-tags", "purego", "./internal/parity/nativeruns",
		"-model", filepath.Join(root, "models", "stories260K", "stories260K.gguf")},
		map[string]any{"cwd": root, "env": env, "encoding": "utf8", "maxBuffer": 64 << 20,
			"stdio": []any{"ignore", "pipe", "inherit"}})
	return res.String(), nil
}
