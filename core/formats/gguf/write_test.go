package gguf

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// allTypesKVs holds one value of every metadata type Write supports,
// including arrays of each and nested arrays.
func allTypesKVs() []KV {
	return []KV{
		{"general.architecture", "llama"},
		{"u8", uint8(200)},
		{"i8", int8(-100)},
		{"u16", uint16(60000)},
		{"i16", int16(-30000)},
		{"u32", uint32(4000000000)},
		{"i32", int32(-2000000000)},
		{"f32", float32(1.5e-5)},
		{"bool.true", true},
		{"bool.false", false},
		{"str", "héllo\x00world"},
		{"str.empty", ""},
		{"u64", uint64(math.MaxUint64)},
		{"i64", int64(math.MinInt64)},
		{"f64", math.Pi},
		{"a.u8", []uint8{0, 1, 255}},
		{"a.i8", []int8{-128, 0, 127}},
		{"a.u16", []uint16{0, 65535}},
		{"a.i16", []int16{-32768, 32767}},
		{"a.u32", []uint32{1, 2, 3}},
		{"a.i32", []int32{-1, 0, 1}},
		{"a.f32", []float32{0.5, float32(math.Inf(-1)), 1e-40}},
		{"a.bool", []bool{true, false, true}},
		{"a.str", []string{"a", "", "ccc"}},
		{"a.u64", []uint64{math.MaxUint64, 0}},
		{"a.i64", []int64{math.MinInt64, math.MaxInt64}},
		{"a.f64", []float64{1e300, -2.5}},
		{"a.empty", []string{}},
		{"a.nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]float64{3}}, []any{}}},
		{"a.nested.empty", []any{}},
	}
}

func testTensors(t testing.TB) []*tensor.Tensor {
	t.Helper()
	values := make([]float32, 2*256) // two rows of one K-quant super-block
	for i := range values {
		values[i] = float32(math.Sin(float64(i)))
	}
	var out []*tensor.Tensor
	for _, dt := range append([]tensor.DType{tensor.F32, tensor.F16, tensor.BF16}, tensor.QuantTypes()...) {
		n, _ := dt.Bytes(int64(len(values)))
		data := make([]byte, n)
		if err := tensor.Encode(dt, values, data); err != nil {
			t.Fatal(err)
		}
		tt, err := tensor.New("w."+dt.String(), dt, tensor.Shape{2, 256}, data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tt)
	}
	// A 3-D tensor with an odd size checks shape reversal and padding.
	odd, err := tensor.FromFloat32("odd", tensor.Shape{3, 1, 5}, make([]float32, 15))
	if err != nil {
		t.Fatal(err)
	}
	return append(out, odd)
}

func TestWriteRoundTrip(t *testing.T) {
	for _, align := range []int{0, 32, 64} {
		kvs := allTypesKVs()
		tensors := testTensors(t)
		var buf bytes.Buffer
		if err := Write(&buf, kvs, tensors, align); err != nil {
			t.Fatal(err)
		}
		f, err := parseBytes(buf.Bytes(), "roundtrip.gguf")
		if err != nil {
			t.Fatal(err)
		}
		if f.Version != 3 {
			t.Errorf("version %d", f.Version)
		}
		wantKVs := kvs
		if align == 64 {
			wantKVs = append(wantKVs, KV{KeyAlignment, uint32(64)})
		}
		if !reflect.DeepEqual(f.KVs, wantKVs) {
			t.Errorf("alignment %d: KVs differ:\n got %#v\nwant %#v", align, f.KVs, wantKVs)
		}
		if want := max(align, DefaultAlignment); f.Alignment != want || f.DataOffset%int64(want) != 0 {
			t.Errorf("alignment %d, data offset %d; want alignment %d", f.Alignment, f.DataOffset, want)
		}
		if len(f.Tensors) != len(tensors) {
			t.Fatalf("%d tensors, want %d", len(f.Tensors), len(tensors))
		}
		for i, want := range tensors {
			info := f.Tensors[i]
			if info.Offset%int64(f.Alignment) != 0 {
				t.Errorf("%s: offset %d not aligned", info.Name, info.Offset)
			}
			got, err := f.ReadTensor(want.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: read %v %v, wrote %v %v", want.Name, got.DType, got.Shape, want.DType, want.Shape)
			}
		}
	}
}

// TestWriteNe checks the on-disk dimension order: ggml's ne is the
// reverse of graft's shape.
func TestWriteNe(t *testing.T) {
	x, err := tensor.FromFloat32("x", tensor.Shape{2, 3}, make([]float32, 6))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, nil, []*tensor.Tensor{x}, 0); err != nil {
		t.Fatal(err)
	}
	want := newRaw(3, 1, 0).tensorInfo("x", 0, 0, 3, 2).padTo(32, 24).padTo(32, 0)
	if !bytes.Equal(buf.Bytes(), want.b) {
		t.Errorf("wrote\n%x\nwant\n%x", buf.Bytes(), want.b)
	}
}

func TestWriteErrors(t *testing.T) {
	x, _ := tensor.FromFloat32("x", tensor.Shape{4}, make([]float32, 4))
	bad := &tensor.Tensor{Name: "bad", DType: tensor.F32, Shape: tensor.Shape{4}, Data: make([]byte, 3)}
	nf4 := &tensor.Tensor{Name: "nf4", DType: tensor.NF4, Shape: tensor.Shape{4}, Data: make([]byte, 2)}
	five := &tensor.Tensor{Name: "five", DType: tensor.F32, Shape: tensor.Shape{1, 1, 1, 1, 1}, Data: make([]byte, 4)}
	tests := []struct {
		name    string
		kvs     []KV
		tensors []*tensor.Tensor
		align   int
		want    string
	}{
		{"int value", []KV{{"k", 1}}, nil, 0, "unsupported value type int"},
		{"map value", []KV{{"k", map[string]int{}}}, nil, 0, "unsupported value type"},
		{"nested non-slice", []KV{{"k", []any{"x"}}}, nil, 0, "not a slice"},
		{"duplicate key", []KV{{"k", "a"}, {"k", "b"}}, nil, 0, `duplicate key "k"`},
		{"duplicate tensor", nil, []*tensor.Tensor{x, x}, 0, `duplicate tensor name "x"`},
		{"nil tensor", nil, []*tensor.Tensor{nil}, 0, "nil"},
		{"bad tensor size", nil, []*tensor.Tensor{bad}, 0, `"bad"`},
		{"no ggml type", nil, []*tensor.Tensor{nf4}, 0, "NF4"},
		{"five dims", nil, []*tensor.Tensor{five}, 0, "5 dimensions"},
		{"alignment not power of two", nil, nil, 48, "power of two"},
		{"alignment disagrees", []KV{{KeyAlignment, uint32(64)}}, nil, 32, "disagrees"},
		{"alignment not uint32", []KV{{KeyAlignment, uint64(64)}}, nil, 0, "uint32"},
		{"too deep", []KV{{"k", deepArray(maxArrayDepth + 1)}}, nil, 0, "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, tt.kvs, tt.tensors, tt.align)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := Write(&bytes.Buffer{}, []KV{{"k", deepArray(maxArrayDepth)}}, nil, 0); err != nil {
		t.Errorf("array nested %d deep: %v", maxArrayDepth, err)
	}
}

// deepArray returns arrays nested depth levels deep.
func deepArray(depth int) any {
	var v any = []int32{7}
	for range depth - 1 {
		v = []any{v}
	}
	return v
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	kvs := allTypesKVs()
	tensors := testTensors(t)
	if err := WriteFile(path, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !reflect.DeepEqual(f.KVs, kvs) || len(f.Tensors) != len(tensors) {
		t.Errorf("WriteFile then Open: %d KVs, %d tensors", len(f.KVs), len(f.Tensors))
	}

	// A failed write leaves the old file and no temporary behind.
	if err := WriteFile(path, []KV{{"k", 1}}, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile with a bad value: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1", len(entries))
	}
	if g, err := Open(path); err != nil {
		t.Errorf("old file damaged by a failed write: %v", err)
	} else {
		g.Close()
	}
}

// TestRewriteStories copies the real model through Write and checks that
// nothing changes.
func TestRewriteStories(t *testing.T) {
	f, err := Open(storiesPath(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var tensors []*tensor.Tensor
	for _, ti := range f.Tensors {
		x, err := f.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, x)
	}
	var buf bytes.Buffer
	if err := Write(&buf, f.KVs, tensors, 0); err != nil {
		t.Fatal(err)
	}
	orig := readStories(t, "stories260K.gguf")
	if !bytes.Equal(buf.Bytes(), orig) {
		t.Errorf("rewriting stories260K.gguf changed it (%d bytes, was %d)", buf.Len(), len(orig))
	}
}
