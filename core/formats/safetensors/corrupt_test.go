package safetensors

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

func TestTruncatedAtEveryLength(t *testing.T) {
	b := encode(t, []*tensor.Tensor{
		mustTensor(t, "a", tensor.F32, tensor.Shape{2}, seqBytes(8, 1)),
		mustTensor(t, "b", tensor.I16, tensor.Shape{3}, seqBytes(6, 2)),
	}, map[string]string{"format": "pt"})
	for n := range len(b) {
		if _, err := parseBytes(b[:n], "cut.safetensors"); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(b))
		} else if !strings.Contains(err.Error(), "cut.safetensors") {
			t.Errorf("truncated to %d: error %q does not name the file", n, err)
		}
	}
	if _, err := parseBytes(b, "whole"); err != nil {
		t.Fatal(err)
	}
}

func TestHeaderLengthChecks(t *testing.T) {
	for _, c := range []struct {
		name   string
		length uint64
		size   int
		want   string
	}{
		{"huge", 1 << 40, 64, "exceeds"},
		{"max uint64", ^uint64(0), 64, "exceeds"},
		{"just over the limit", MaxHeaderSize + 1, 64, "exceeds"},
		{"past end", 100, 50, "only 42 bytes follow"},
		{"zero", 0, 8, "does not start"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := make([]byte, c.size)
			binary.LittleEndian.PutUint64(b, c.length)
			_, err := parseBytes(b, "len.safetensors")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "len.safetensors") {
				t.Errorf("err = %v, want one naming the file and containing %q", err, c.want)
			}
		})
	}
}

func TestCorruptHeaders(t *testing.T) {
	data8 := make([]byte, 8)
	cases := []struct {
		name   string
		header string
		data   []byte
		want   string // substring of the error
	}{
		{"not json", `hello`, nil, "does not start"},
		{"leading space", ` {}`, nil, "does not start"},
		{"unterminated", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}`, []byte{1}, "unexpected EOF"},
		{"bad syntax", `{"a" 1}`, nil, "expected colon"},
		{"top level array", `[]`, nil, "does not start"},
		{"trailing garbage", `{} x`, nil, "header JSON"},
		{"second object", `{}{}`, nil, "after the JSON object"},
		{"invalid utf8", "{\"\xff\":1}", nil, "UTF-8"},
		{"entry not object", `{"a":5}`, nil, `tensor "a"`},
		{"missing dtype", `{"a":{"shape":[1],"data_offsets":[0,1]}}`, []byte{1}, `tensor "a": missing dtype`},
		{"missing shape", `{"a":{"dtype":"U8","data_offsets":[0,1]}}`, []byte{1}, `tensor "a": missing shape`},
		{"missing offsets", `{"a":{"dtype":"U8","shape":[1]}}`, []byte{1}, `tensor "a": missing data_offsets`},
		{"null entry", `{"a":null}`, nil, `tensor "a": missing dtype`},
		{"dtype not string", `{"a":{"dtype":1,"shape":[1],"data_offsets":[0,1]}}`, []byte{1}, `tensor "a"`},
		{"negative dim", `{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, []byte{1}, "invalid dimension -1"},
		{"fractional dim", `{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, []byte{1}, `tensor "a"`},
		{"overflowing shape", `{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}}`, []byte{1}, "overflows"},
		{"one offset", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}`, []byte{1}, "has 1 entries"},
		{"three offsets", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, []byte{1}, "has 3 entries"},
		{"begin after end", `{"a":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}`, []byte{1}, "invalid data_offsets [1, 0]"},
		{"negative begin", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, []byte{1}, "invalid data_offsets"},
		{"end out of range", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, []byte{1}, "run past the 1 data bytes"},
		{"begin out of range", `{"a":{"dtype":"U8","shape":[0],"data_offsets":[5,5]}}`, []byte{1}, "run past"},
		{"wrong length", `{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, data8, `tensor "w": F32 [2] needs 8 bytes`},
		{"wrong length bf16", `{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,6]}}`, data8, "needs 8 bytes"},
		{"wrong length f8", `{"w":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[0,4]}}`, data8, "needs 3 bytes"},
		{"partial byte f4", `{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, data8, "not a whole number of bytes"},
		{"overlap", `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[3,7]}}`, data8, `tensor "b": data_offsets [3, 7] overlap tensor "a"`},
		{"same range", `{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}`, data8, "overlap"},
		{"nested", `{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}`, data8, "overlap"},
		{"duplicate tensor", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, data8, `duplicate key "a"`},
		{"metadata number", `{"__metadata__":{"format":"pt","step":5}}`, nil, `__metadata__["step"] is a number, want a string`},
		{"metadata nested", `{"__metadata__":{"x":{"y":"z"}}}`, nil, "is an object, want a string"},
		{"metadata null value", `{"__metadata__":{"x":null}}`, nil, "is null, want a string"},
		{"metadata array", `{"__metadata__":["a"]}`, nil, "is an array, want an object"},
		{"metadata string", `{"__metadata__":"pt"}`, nil, "is a string, want an object"},
		{"metadata duplicate key", `{"__metadata__":{"a":"1","a":"2"}}`, nil, `duplicate key "a"`},
		{"metadata twice", `{"__metadata__":{},"__metadata__":{}}`, nil, "duplicate key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseBytes(rawFile(c.header, c.data), "bad.safetensors")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "safetensors bad.safetensors: ") {
				t.Errorf("err = %q, want it to name the file and contain %q", err, c.want)
			}
		})
	}
}

func TestAcceptedHeaders(t *testing.T) {
	cases := []struct {
		name, header string
		data         []byte
	}{
		{"gap between tensors", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, make([]byte, 8)},
		{"uncovered tail", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 8)},
		{"empty tensors share an offset", `{"a":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"c":{"dtype":"I64","shape":[3,0],"data_offsets":[2,2]}}`, make([]byte, 4)},
		{"unordered offsets", `{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 4)},
		{"unknown fields ignored", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":[1,2]}}`, []byte{1}},
		{"null metadata", `{"__metadata__":null}`, nil},
		{"whitespace and padding", "{ \"a\" : {\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]} }\n\t   ", []byte{1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseBytes(rawFile(c.header, c.data), "ok.safetensors"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestUnsupportedDTypes(t *testing.T) {
	header := `{"f8":{"dtype":"F8_E4M3","shape":[2,2],"data_offsets":[0,4]},` +
		`"odd":{"dtype":"Q9_WEIRD","shape":[3],"data_offsets":[4,5]},` +
		`"u":{"dtype":"U8","shape":[3],"data_offsets":[5,8]}}`
	f, err := parseBytes(rawFile(header, seqBytes(8, 1)), "mixed.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"f8", "odd"} {
		info, _ := f.Tensor(name)
		if info.DType != tensor.Invalid {
			t.Errorf("%s: DType = %v, want Invalid", name, info.DType)
		}
		_, err := f.ReadTensor(name)
		if !errors.Is(err, ErrUnsupportedDType) || !strings.Contains(err.Error(), info.DTypeName) || !strings.Contains(err.Error(), "mixed.safetensors") {
			t.Errorf("ReadTensor(%s) = %v", name, err)
		}
		if sr, err := f.TensorReader(name); err != nil || sr.Size() != info.Size() {
			t.Errorf("TensorReader(%s) = %v, %v", name, sr, err)
		}
	}
	if u, err := f.ReadTensor("u"); err != nil || u.DType != tensor.U8 || len(u.Data) != 3 {
		t.Errorf("ReadTensor(u) = %v, %v", u, err)
	}
}

// shortReaderAt returns fewer bytes than asked once past limit, as a file
// truncated after Parse would.
type shortReaderAt struct {
	b     []byte
	limit int64
}

func (r shortReaderAt) ReadAt(p []byte, off int64) (int, error) {
	end := min(off+int64(len(p)), r.limit)
	if off >= end {
		return 0, errors.New("gone")
	}
	return copy(p, r.b[off:end]), nil
}

func TestReadTensorShortRead(t *testing.T) {
	b := encode(t, []*tensor.Tensor{mustTensor(t, "a", tensor.U8, tensor.Shape{8}, seqBytes(8, 1))}, nil)
	r := shortReaderAt{b: b, limit: int64(len(b))}
	f, err := Parse(r, int64(len(b)), "shrunk")
	if err != nil {
		t.Fatal(err)
	}
	f.r = shortReaderAt{b: b, limit: int64(len(b)) - 3}
	if _, err := f.ReadTensor("a"); err == nil || !strings.Contains(err.Error(), `shrunk: tensor "a"`) {
		t.Errorf("err = %v", err)
	}
}
