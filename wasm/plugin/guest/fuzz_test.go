package guest

import (
	"testing"

	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// FuzzHandle: whatever bytes arrive, the plugin answers with a decodable
// response (an error for garbage) and keeps working.
func FuzzHandle(f *testing.F) {
	for _, req := range []abi.Request{
		{Op: abi.OpInfo},
		{Op: abi.OpGenerate, Args: []byte{0x81, 0xa6, 'p', 'r', 'o', 'm', 'p', 't', 0xa1, 'x'}},
		{Op: abi.OpEval, Args: []byte{0x81, 0xa9, 's', 'e', 'q', 'u', 'e', 'n', 'c', 'e', 's', 0x91, 0x92, 0x01, 0x02}},
		{Op: abi.OpUnloadAdapter, Args: []byte{0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'a'}},
	} {
		b, err := abi.Encode(&req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p := loaded(f)
	f.Fuzz(func(t *testing.T, req []byte) {
		var resp abi.Response
		if err := abi.Decode(p.Handle(req), &resp); err != nil {
			t.Fatalf("undecodable response: %v", err)
		}
		if _, msg := call(t, p, abi.OpPing, nil, nil); msg != "" {
			t.Fatalf("ping after the request: %s", msg)
		}
	})
}
