package gguf

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// storiesTensors lists the tensors of stories260K with their row-major
// shapes; blocks 0..4 repeat the per-layer set.
func storiesTensors() map[string]tensor.Shape {
	want := map[string]tensor.Shape{
		"token_embd.weight":  {512, 64},
		"output_norm.weight": {64},
		"output.weight":      {512, 64},
	}
	for b := range 5 {
		p := fmt.Sprintf("blk.%d.", b)
		want[p+"attn_q.weight"] = tensor.Shape{64, 64}
		want[p+"attn_k.weight"] = tensor.Shape{32, 64}
		want[p+"attn_v.weight"] = tensor.Shape{32, 64}
		want[p+"attn_output.weight"] = tensor.Shape{64, 64}
		want[p+"ffn_gate.weight"] = tensor.Shape{172, 64}
		want[p+"ffn_down.weight"] = tensor.Shape{64, 172}
		want[p+"ffn_up.weight"] = tensor.Shape{172, 64}
		want[p+"attn_norm.weight"] = tensor.Shape{64}
		want[p+"ffn_norm.weight"] = tensor.Shape{64}
	}
	return want
}

func TestStories260K(t *testing.T) {
	tests := []struct {
		file    string
		version uint32
		nKVs    int
		// dtype of the 2-D weights; norms are always F32.
		matrices tensor.DType
	}{
		{"stories260K.gguf", 3, 19, tensor.F32},
		{"stories260K-v1.gguf", 1, 18, tensor.F32},
		{"stories260K-q8_0-v2.gguf", 2, 20, tensor.Q8_0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := Open(storiesPath(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Version != tt.version {
				t.Errorf("version %d, want %d", f.Version, tt.version)
			}
			if len(f.KVs) != tt.nKVs {
				t.Errorf("%d metadata entries, want %d", len(f.KVs), tt.nKVs)
			}
			if got := f.Architecture(); got != "llama" {
				t.Errorf("architecture %q, want llama", got)
			}
			for key, want := range map[string]uint64{
				"llama.block_count":               5,
				"llama.embedding_length":          64,
				"llama.feed_forward_length":       172,
				"llama.attention.head_count":      8,
				"llama.attention.head_count_kv":   4,
				"llama.context_length":            512,
				"tokenizer.ggml.bos_token_id":     1,
				"tokenizer.ggml.eos_token_id":     2,
				"tokenizer.ggml.padding_token_id": 0,
			} {
				if got, ok := f.Uint(key); !ok || got != want {
					t.Errorf("%s = %d, %v; want %d", key, got, ok, want)
				}
			}
			if got := f.ArchKey("block_count"); got != "llama.block_count" {
				t.Errorf("ArchKey = %q", got)
			}
			if eps, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); !ok || math.Abs(eps-1e-5) > 1e-10 {
				t.Errorf("rms eps = %v, %v", eps, ok)
			}
			tokens, ok := f.Strings("tokenizer.ggml.tokens")
			if !ok || len(tokens) != 512 || tokens[1] != "<s>" || tokens[3] != "<0x00>" {
				t.Errorf("tokens: ok=%v len=%d", ok, len(tokens))
			}
			if scores, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(scores) != 512 {
				t.Errorf("scores: ok=%v len=%d", ok, len(scores))
			}
			if types, ok := f.Int32s("tokenizer.ggml.token_type"); !ok || len(types) != 512 || types[0] != 2 || types[1] != 3 || types[3] != 6 {
				t.Errorf("token types: ok=%v %v", ok, types[:min(4, len(types))])
			}
			if f.Alignment != 32 || f.DataOffset%32 != 0 {
				t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
			}

			want := storiesTensors()
			if len(f.Tensors) != len(want) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), len(want))
			}
			for _, ti := range f.Tensors {
				shape, ok := want[ti.Name]
				if !ok {
					t.Errorf("unexpected tensor %q", ti.Name)
					continue
				}
				if !ti.Shape.Equal(shape) {
					t.Errorf("%s: shape %v, want %v", ti.Name, ti.Shape, shape)
				}
				wantType := tt.matrices
				if len(shape) == 1 {
					wantType = tensor.F32
				}
				if ti.DType != wantType || GGMLTypeName(ti.GGMLType) != wantType.String() {
					t.Errorf("%s: dtype %v (ggml %s), want %v", ti.Name, ti.DType, GGMLTypeName(ti.GGMLType), wantType)
				}
				if split := ti.RowsSplitBlocks(); split != (wantType == tensor.Q8_0 && strings.HasSuffix(ti.Name, "ffn_down.weight")) {
					t.Errorf("%s: RowsSplitBlocks = %v", ti.Name, split)
				}
			}
		})
	}
}

// TestStoriesV1MatchesV3 checks that the 32-bit-count v1 layout decodes to
// the same metadata and tensor bytes as v3.
func TestStoriesV1MatchesV3(t *testing.T) {
	v1, err := Open(storiesPath(t, "stories260K-v1.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()
	v3, err := Open(storiesPath(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer v3.Close()
	for _, kv := range v1.KVs {
		other, ok := v3.Get(kv.Key)
		if !ok || fmt.Sprint(other) != fmt.Sprint(kv.Value) {
			t.Errorf("metadata %q differs between v1 and v3", kv.Key)
		}
	}
	if len(v1.Tensors) != len(v3.Tensors) {
		t.Fatalf("%d tensors in v1, %d in v3", len(v1.Tensors), len(v3.Tensors))
	}
	for i, ti := range v1.Tensors {
		if v3.Tensors[i].Name != ti.Name {
			t.Fatalf("tensor %d: %q in v1, %q in v3", i, ti.Name, v3.Tensors[i].Name)
		}
		a, err := v1.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := v3.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if a.DType != b.DType || !a.Shape.Equal(b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s: v1 and v3 tensors differ", ti.Name)
		}
	}
}

// TestStoriesQ8MatchesF32 reads every tensor of the Q8_0 file, including
// ffn_down whose 172-element rows split blocks, and checks it against the
// F32 original to within Q8_0 precision.
func TestStoriesQ8MatchesF32(t *testing.T) {
	q8, err := Open(storiesPath(t, "stories260K-q8_0-v2.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer q8.Close()
	f32, err := Open(storiesPath(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f32.Close()
	for _, ti := range q8.Tensors {
		q, err := q8.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		wantDType := ti.DType
		if ti.RowsSplitBlocks() {
			wantDType = tensor.F32 // dequantized because rows split blocks
		}
		if q.DType != wantDType || !q.Shape.Equal(ti.Shape) {
			t.Errorf("%s: read %v %v, want %v %v", ti.Name, q.DType, q.Shape, wantDType, ti.Shape)
		}
		r, err := f32.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		want, err := r.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		// Each Q8_0 value is within half a step (max|x|/127/2) of the
		// original, and the f16 scale adds up to 127*2^-11 of a step; bound
		// both by the tensor-wide maximum.
		var amax float64
		for _, v := range want {
			amax = max(amax, math.Abs(float64(v)))
		}
		tol := amax / 127 * 0.57 // half a step plus the f16 rounding of the scale
		for i := range want {
			if d := math.Abs(float64(got[i] - want[i])); d > tol {
				t.Fatalf("%s[%d]: q8 %v, f32 %v (tolerance %v)", ti.Name, i, got[i], want[i], tol)
			}
		}
	}
}

func TestReadTensorErrors(t *testing.T) {
	// One IQ2_XS tensor (256 elements, 74 bytes) that graft cannot decode.
	r := newRaw(3, 1, 0).tensorInfo("k", 17, 0, 256).padTo(32, 74)
	f, err := parseBytes(r.b, "iq2.gguf")
	if err != nil {
		t.Fatal(err)
	}
	ti, _ := f.Tensor("k")
	if ti.DType != tensor.Invalid || GGMLTypeName(ti.GGMLType) != "IQ2_XS" || ti.Size != 74 {
		t.Fatalf("tensor info %+v", ti)
	}
	_, err = f.ReadTensor("k")
	if err == nil || !strings.Contains(err.Error(), "iq2.gguf") || !strings.Contains(err.Error(), "IQ2_XS") || !strings.Contains(err.Error(), `"k"`) {
		t.Errorf("ReadTensor of IQ2_XS: %v", err)
	}
	_, err = f.ReadTensor("missing")
	if err == nil || !strings.Contains(err.Error(), "iq2.gguf") || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("ReadTensor of a missing tensor: %v", err)
	}

	// A reader that is shorter than the size Parse was told.
	r = newRaw(3, 1, 0).tensorInfo("x", 0, 0, 8).padTo(32, 32)
	f, err = Parse(bytes.NewReader(r.b[:len(r.b)-1]), int64(len(r.b)), "short.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadTensor("x"); err == nil || !strings.Contains(err.Error(), "short.gguf") {
		t.Errorf("ReadTensor past the real end: %v", err)
	}

	// After Close, ReadTensor fails cleanly.
	of, err := Open(storiesPath(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := of.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := of.ReadTensor("output_norm.weight"); err == nil {
		t.Error("ReadTensor after Close succeeded")
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open("does-not-exist.gguf")
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.gguf") {
		t.Errorf("Open of a missing file: %v", err)
	}
}

func TestGGMLTypeName(t *testing.T) {
	for id, want := range map[uint32]string{0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 8: "Q8_0", 12: "Q4_K", 14: "Q6_K", 30: "BF16", 4: "GGMLType(4)", 1000: "GGMLType(1000)"} {
		if got := GGMLTypeName(id); got != want {
			t.Errorf("GGMLTypeName(%d) = %q, want %q", id, got, want)
		}
	}
	for _, dt := range append([]tensor.DType{tensor.F32, tensor.F16, tensor.BF16}, tensor.QuantTypes()...) {
		id, ok := GGMLType(dt)
		if !ok || GGMLTypeName(id) != dt.String() {
			t.Errorf("GGMLType(%v) = %d (%s), %v", dt, id, GGMLTypeName(id), ok)
		}
	}
	if _, ok := GGMLType(tensor.NF4); ok {
		t.Error("NF4 has a GGUF type")
	}
}
