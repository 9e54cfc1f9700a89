package safetensors

import (
	"bytes"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// FuzzParse checks that no input makes Parse or ReadTensor panic or
// over-allocate, and that every file Parse accepts survives a round trip
// through Write with its tensors intact.
func FuzzParse(f *testing.F) {
	f.Add(encode(f, nil, nil))
	f.Add(encode(f, []*tensor.Tensor{
		mustTensor(f, "a", tensor.F32, tensor.Shape{2}, seqBytes(8, 1)),
		mustTensor(f, "b", tensor.BF16, tensor.Shape{1, 3}, seqBytes(6, 2)),
		mustTensor(f, "c", tensor.Bool, tensor.Shape{}, []byte{1}),
		mustTensor(f, "e", tensor.I64, tensor.Shape{0, 2}, nil),
	}, map[string]string{"format": "pt"}))
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"F8_E5M2","shape":[2],"data_offsets":[4,6]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"__metadata__":{"k":"v"},"x":{"dtype":"Q","shape":[1],"data_offsets":[0,1]}}`, []byte{1}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{'})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := parseBytes(b, "fuzz")
		if err != nil {
			return
		}
		dataStart := file.dataStart
		var read []*tensor.Tensor
		for _, info := range file.Tensors {
			if info.Begin < 0 || info.End < info.Begin || dataStart+info.End > int64(len(b)) {
				t.Fatalf("accepted out-of-range tensor %+v", info)
			}
			tt, err := file.ReadTensor(info.Name)
			if info.DType == tensor.Invalid {
				if err == nil {
					t.Fatalf("read unsupported dtype %s", info.DTypeName)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.Validate(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tt.Data, b[dataStart+info.Begin:dataStart+info.End]) {
				t.Fatalf("tensor %q: data differs from the input range", info.Name)
			}
			read = append(read, tt)
		}
		var out bytes.Buffer
		if err := Write(&out, read, file.Metadata); err != nil {
			t.Fatalf("rewriting an accepted file: %v", err)
		}
		again, err := parseBytes(out.Bytes(), "rewritten")
		if err != nil {
			t.Fatalf("parsing a rewritten file: %v", err)
		}
		if len(again.Tensors) != len(read) || len(again.Metadata) != len(file.Metadata) {
			t.Fatalf("rewrite kept %d of %d tensors", len(again.Tensors), len(read))
		}
		for k, v := range file.Metadata {
			if again.Metadata[k] != v {
				t.Fatalf("metadata %q changed", k)
			}
		}
		for _, want := range read {
			got, err := again.ReadTensor(want.Name)
			if err != nil || got.DType != want.DType || !got.Shape.Equal(want.Shape) || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("tensor %q changed in the rewrite: %v", want.Name, err)
			}
		}
	})
}
