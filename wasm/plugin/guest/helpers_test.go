package guest

import (
	"os"
	"testing"

	"github.com/graft-ml/graft/wasm/plugin/abi"
)

const (
	modelPath = "../../../models/stories260K/stories260K.gguf"
	trainPath = "../../../examples/lora/data/train.jsonl"
	evalPath  = "../../../examples/lora/data/eval.jsonl"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encodeRequest encodes a request for op with args (none when nil).
func encodeRequest(t testing.TB, op string, args any) []byte {
	t.Helper()
	req := abi.Request{Op: op}
	if args != nil {
		raw, err := abi.Encode(args)
		if err != nil {
			t.Fatal(err)
		}
		req.Args = raw
	}
	b, err := abi.Encode(&req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call runs one operation through Handle, as the wasm exports do, and
// decodes the result into result (when not nil). It returns the response's
// code and error.
func call(t testing.TB, p *Plugin, op string, args, result any) (code, msg string) {
	t.Helper()
	var resp abi.Response
	if err := abi.Decode(p.Handle(encodeRequest(t, op, args)), &resp); err != nil {
		t.Fatalf("%s: undecodable response: %v", op, err)
	}
	if result != nil && len(resp.Result) > 0 {
		if err := abi.Decode(resp.Result, result); err != nil {
			t.Fatalf("%s: undecodable result: %v", op, err)
		}
	}
	return resp.Code, resp.Error
}

// mustCall is call for operations that must succeed.
func mustCall(t testing.TB, p *Plugin, op string, args, result any) {
	t.Helper()
	if code, msg := call(t, p, op, args, result); code != "" {
		t.Fatalf("%s: %s: %s", op, code, msg)
	}
}

// loaded returns a plugin with stories260K loaded.
func loaded(t testing.TB) *Plugin {
	t.Helper()
	p := New(nil, nil)
	mustCall(t, p, abi.OpLoadModel, &abi.LoadModelArgs{Name: "stories260K.gguf", GGUF: readFile(t, modelPath)}, nil)
	return p
}
