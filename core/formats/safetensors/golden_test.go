package safetensors

import (
	"bytes"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// TestGoldenBytes pins the exact output of Write: sorted keys at every
// level (so "Z" < "__metadata__" < "a" byte-wise), data in sorted-name
// order, and space padding of the header to a multiple of 8.
func TestGoldenBytes(t *testing.T) {
	b, err := tensor.FromFloat32("b", tensor.Shape{2}, []float32{1, -2})
	if err != nil {
		t.Fatal(err)
	}
	tensors := []*tensor.Tensor{
		b,
		mustTensor(t, "a", tensor.I8, tensor.Shape{3}, []byte{1, 2, 3}),
		mustTensor(t, "Z", tensor.Bool, tensor.Shape{}, []byte{1}),
	}
	header := `{"Z":{"data_offsets":[0,1],"dtype":"BOOL","shape":[]},` +
		`"__metadata__":{"format":"pt"},` +
		`"a":{"data_offsets":[1,4],"dtype":"I8","shape":[3]},` +
		`"b":{"data_offsets":[4,12],"dtype":"F32","shape":[2]}}` +
		" " // 191 bytes of JSON padded to 192
	var want []byte
	want = append(want, 0xc0, 0, 0, 0, 0, 0, 0, 0)
	want = append(want, header...)
	want = append(want, 0x01)             // Z
	want = append(want, 0x01, 0x02, 0x03) // a
	want = append(want, 0, 0, 0x80, 0x3f) // b[0] = 1.0
	want = append(want, 0, 0, 0, 0xc0)    // b[1] = -2.0
	got := encode(t, tensors, map[string]string{"format": "pt"})
	if !bytes.Equal(got, want) {
		t.Errorf("Write produced\n%q\nwant\n%q", got, want)
	}
}

func TestHeaderPaddingAlignsData(t *testing.T) {
	for n := range 20 {
		name := string(bytes.Repeat([]byte("x"), n+1))
		b := encode(t, []*tensor.Tensor{mustTensor(t, name, tensor.U8, tensor.Shape{1}, []byte{7})}, nil)
		hlen := int(b[0]) | int(b[1])<<8
		if hlen%8 != 0 {
			t.Errorf("name length %d: header length %d is not a multiple of 8", n+1, hlen)
		}
		if b[8+hlen-1] != '}' && b[8+hlen-1] != ' ' {
			t.Errorf("name length %d: header ends with %q", n+1, b[8+hlen-1])
		}
		if b[len(b)-1] != 7 {
			t.Errorf("name length %d: data misplaced", n+1)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	b := encode(t, nil, nil)
	want := append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, "{}      "...)
	if !bytes.Equal(b, want) {
		t.Errorf("empty file = %q, want %q", b, want)
	}
	f, err := parseBytes(b, "empty")
	if err != nil || len(f.Tensors) != 0 {
		t.Errorf("parse empty = %v, %v", f, err)
	}
}
