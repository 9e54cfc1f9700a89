package abi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/train"
)

func TestPackUnpack(t *testing.T) {
	for _, c := range [][2]uint32{{0, 0}, {1, 2}, {0xffffffff, 0xffffffff}, {0x12345678, 0x9abcdef0}} {
		if p, n := Unpack(Pack(c[0], c[1])); p != c[0] || n != c[1] {
			t.Errorf("Unpack(Pack(%#x, %#x)) = %#x, %#x", c[0], c[1], p, n)
		}
	}
}

func TestDecode(t *testing.T) {
	in := Request{Op: OpGenerate, Args: []byte{0x80}}
	b, err := Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out Request
	if err := Decode(b, &out); err != nil || out.Op != in.Op || string(out.Args) != string(in.Args) {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"trailing", append(b, 0xc0), "1 bytes after the value"},
		{"truncated", b[:len(b)-2], "msgpack decode"},
		{"empty", nil, "EOF"},
		{"wrong type", []byte{0x92, 0x01, 0x02}, "msgpack decode"},
	} {
		if err := Decode(tc.data, &out); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	// Fields a newer peer adds are ignored.
	extra := []byte{0x82, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g', 0xa3, 'n', 'e', 'w', 0x01}
	var r Request
	if err := Decode(extra, &r); err != nil || r.Op != OpPing {
		t.Fatalf("unknown field: %+v, %v", r, err)
	}
}

// TestSpecKeys: a train.Spec travels under the keys of its JSON form (graft
// train --config run.json), so hosts in any language write it as they
// would write run.json.
func TestSpecKeys(t *testing.T) {
	text := "Pip hooted."
	grad := 0.5
	in := TrainArgs{Spec: &train.Spec{Method: "houlsby", Options: map[string]any{"reduction_factor": 4},
		Records: []data.Record{{Text: &text}}, SeqLen: 32, MaxGradNorm: &grad}}
	b, err := Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := msgpack.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	spec, _ := raw["spec"].(map[string]any)
	if spec["method"] != "houlsby" || spec["seq_len"] != int8(32) || spec["max_grad_norm"] != 0.5 || len(spec) != 5 {
		t.Fatalf("spec on the wire: %v", spec)
	}
	var out TrainArgs
	if err := Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	s := out.Spec
	if s.Method != "houlsby" || s.SeqLen != 32 || *s.MaxGradNorm != 0.5 || len(s.Records) != 1 || *s.Records[0].Text != text ||
		fmt.Sprint(s.Options["reduction_factor"]) != "4" {
		t.Fatalf("round trip: %+v", s)
	}
}
