package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

func TestRoundTripEveryDType(t *testing.T) {
	dtypes := []tensor.DType{
		tensor.F64, tensor.F32, tensor.F16, tensor.BF16,
		tensor.I64, tensor.I32, tensor.I16, tensor.I8,
		tensor.U64, tensor.U32, tensor.U16, tensor.U8, tensor.Bool,
	}
	shapes := []tensor.Shape{{}, {0}, {3}, {2, 3}, {2, 0, 4}, {1, 2, 3}}
	var tensors []*tensor.Tensor
	for i, dt := range dtypes {
		for j, shape := range shapes {
			n, err := dt.Bytes(shape.Numel())
			if err != nil {
				t.Fatal(err)
			}
			name := dt.String() + "/" + shape.String()
			tensors = append(tensors, mustTensor(t, name, dt, shape, seqBytes(int(n), byte(i*16+j))))
		}
	}
	meta := map[string]string{"format": "pt", "note": "<round & trip>"}
	b := encode(t, tensors, meta)
	f, err := parseBytes(b, "rt.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Metadata) != 2 || f.Metadata["format"] != "pt" || f.Metadata["note"] != "<round & trip>" {
		t.Errorf("metadata = %v", f.Metadata)
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("got %d tensors, want %d", len(f.Tensors), len(tensors))
	}
	for i := 1; i < len(f.Tensors); i++ {
		if f.Tensors[i-1].Name >= f.Tensors[i].Name {
			t.Errorf("Tensors not sorted: %q before %q", f.Tensors[i-1].Name, f.Tensors[i].Name)
		}
	}
	for _, want := range tensors {
		info, ok := f.Tensor(want.Name)
		if !ok {
			t.Fatalf("tensor %q missing", want.Name)
		}
		if info.DType != want.DType || info.DTypeName != want.DType.String() || !info.Shape.Equal(want.Shape) {
			t.Errorf("%q: info %+v", want.Name, info)
		}
		got, err := f.ReadTensor(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != want.Name || got.DType != want.DType || !got.Shape.Equal(want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%q: read %v %v %x, want %v %v %x", want.Name, got.DType, got.Shape, got.Data, want.DType, want.Shape, want.Data)
		}
	}
	// Writing what was read reproduces the file byte for byte.
	var again []*tensor.Tensor
	for _, name := range f.Names() {
		tt, err := f.ReadTensor(name)
		if err != nil {
			t.Fatal(err)
		}
		again = append(again, tt)
	}
	if b2 := encode(t, again, f.Metadata); !bytes.Equal(b, b2) {
		t.Error("re-encoding the parsed file changed its bytes")
	}
}

func TestFloatValuesSurvive(t *testing.T) {
	values := []float32{0, 1, -2.5, 3.25e-3, 65504}
	w, err := tensor.FromFloat32("w", tensor.Shape{5}, values)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseBytes(encode(t, []*tensor.Tensor{w}, nil), "v")
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata != nil {
		t.Errorf("metadata = %v, want nil", f.Metadata)
	}
	got, err := f.ReadTensor("w")
	if err != nil {
		t.Fatal(err)
	}
	vals, err := got.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range values {
		if vals[i] != values[i] {
			t.Errorf("value %d = %v, want %v", i, vals[i], values[i])
		}
	}
}

func TestOneReadAtPerTensor(t *testing.T) {
	b := encode(t, []*tensor.Tensor{
		mustTensor(t, "a", tensor.F32, tensor.Shape{4}, seqBytes(16, 1)),
		mustTensor(t, "b", tensor.U8, tensor.Shape{3}, seqBytes(3, 2)),
	}, nil)
	r := &countingReaderAt{r: bytes.NewReader(b)}
	f, err := Parse(r, int64(len(b)), "count")
	if err != nil {
		t.Fatal(err)
	}
	r.calls = 0
	for _, name := range []string{"a", "b"} {
		if _, err := f.ReadTensor(name); err != nil {
			t.Fatal(err)
		}
	}
	if r.calls != 2 {
		t.Errorf("ReadAt called %d times for 2 tensors", r.calls)
	}
}

func TestTensorReaderAndMissing(t *testing.T) {
	data := seqBytes(12, 5)
	f, err := parseBytes(encode(t, []*tensor.Tensor{mustTensor(t, "x", tensor.I32, tensor.Shape{3}, data)}, nil), "tr.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	sr, err := f.TensorReader("x")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 20)
	n, _ := sr.ReadAt(got, 0)
	if n != 12 || !bytes.Equal(got[:n], data) {
		t.Errorf("TensorReader gave %x", got[:n])
	}
	if _, ok := f.Tensor("y"); ok {
		t.Error("Tensor(y) found a missing tensor")
	}
	for _, err := range []error{
		func() error { _, err := f.ReadTensor("y"); return err }(),
		func() error { _, err := f.TensorReader("y"); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "tr.safetensors") || !strings.Contains(err.Error(), `"y"`) {
			t.Errorf("missing tensor error = %v", err)
		}
	}
}

func TestWriteFileAndOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "adapter_model.safetensors")
	first := []*tensor.Tensor{mustTensor(t, "a", tensor.F16, tensor.Shape{2}, seqBytes(4, 1))}
	if err := WriteFile(path, first, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	second := []*tensor.Tensor{mustTensor(t, "b", tensor.BF16, tensor.Shape{3}, seqBytes(6, 9))}
	if err := WriteFile(path, second, nil); err != nil { // replaces the first
		t.Fatal(err)
	}
	// A failing write leaves the previous file intact.
	bad := []*tensor.Tensor{{Name: "c", DType: tensor.F32, Shape: tensor.Shape{2}, Data: []byte{1}}}
	if err := WriteFile(path, bad, nil); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("WriteFile with a bad tensor: err = %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the result (temporary files leaked?)", len(entries))
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Name != path || len(f.Tensors) != 1 || f.Tensors[0].Name != "b" {
		t.Fatalf("opened %q with %+v", f.Name, f.Tensors)
	}
	got, err := f.ReadTensor("b")
	if err != nil || !bytes.Equal(got.Data, second[0].Data) {
		t.Fatalf("ReadTensor = %v, %v", got, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestWriteFileIntoMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "m.safetensors")
	if err := WriteFile(path, nil, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want one naming %s", err, path)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.safetensors")
	if _, err := Open(missing); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
	short := filepath.Join(dir, "short.safetensors")
	if err := os.WriteFile(short, []byte{1, 2, 3}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(short); err == nil || !strings.Contains(err.Error(), short) {
		t.Errorf("Open(short) = %v", err)
	}
}

func TestWriteRejects(t *testing.T) {
	ok := mustTensor(t, "ok", tensor.F32, tensor.Shape{1}, make([]byte, 4))
	q8 := mustTensor(t, "q", tensor.Q8_0, tensor.Shape{32}, make([]byte, 34))
	cases := []struct {
		name    string
		tensors []*tensor.Tensor
		want    string
	}{
		{"duplicate", []*tensor.Tensor{ok, mustTensor(t, "ok", tensor.U8, tensor.Shape{1}, []byte{1})}, `duplicate tensor name "ok"`},
		{"quantized", []*tensor.Tensor{q8}, `"q": dtype Q8_0 cannot be stored`},
		{"bad size", []*tensor.Tensor{{Name: "s", DType: tensor.F32, Shape: tensor.Shape{2}, Data: make([]byte, 7)}}, `"s"`},
		{"nil", []*tensor.Tensor{ok, nil}, "tensor 1 is nil"},
		{"reserved", []*tensor.Tensor{mustTensor(t, "__metadata__", tensor.U8, tensor.Shape{1}, []byte{1})}, "reserved"},
		{"bad utf8 name", []*tensor.Tensor{mustTensor(t, "w\xff", tensor.U8, tensor.Shape{1}, []byte{1})}, "not valid UTF-8"},
		{"invalid dtype", []*tensor.Tensor{{Name: "i", DType: tensor.Invalid, Shape: tensor.Shape{}, Data: nil}}, `"i"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, c.tensors, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestWriteRejectsBadMetadata(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, nil, map[string]string{"format": "p\xfft"})
	if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") || buf.Len() != 0 {
		t.Errorf("err = %v, wrote %d bytes", err, buf.Len())
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after <= 0 {
		return 0, errors.New("disk full")
	}
	w.after--
	return len(p), nil
}

func TestWritePropagatesWriterErrors(t *testing.T) {
	tensors := []*tensor.Tensor{mustTensor(t, "a", tensor.U8, tensor.Shape{1}, []byte{1})}
	for after := range 3 {
		err := Write(&failingWriter{after: after}, tensors, nil)
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("failing after %d writes: err = %v", after, err)
		}
	}
}
