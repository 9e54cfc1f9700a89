package gguf

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// smallFile is a valid GGUF with metadata of several types and two tensors.
func smallFile(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	kvs := []KV{
		{"general.architecture", "llama"},
		{"llama.block_count", uint32(1)},
		{"tokens", []string{"a", "bc"}},
		{"nested", []any{[]int32{1}, []uint8{2, 3}}},
	}
	if err := Write(&buf, kvs, testTensors(t), 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestTruncated parses every prefix of a header (and of its data section)
// and expects an error naming the file, never a panic or success.
//
// Every prefix costs a parse up to where it ends, so the stories headers
// (11-14 KB) cost about 10^8 bytes parsed: a few seconds natively, minutes
// under wasm. In -short mode (the wasm runs) the stories files are cut at
// every 29th byte (and at the data section's start) instead, which still
// lands in every kind of field they hold (29 is prime to the 4- and 8-byte
// field sizes), while small.gguf, whose few fields hold strings, scalars,
// arrays, nested arrays and tensor infos, is still cut at every byte;
// test-native cuts every file at every byte.
func TestTruncated(t *testing.T) {
	real3 := readStories(t, "stories260K.gguf")
	real1 := readStories(t, "stories260K-v1.gguf")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"small.gguf", smallFile(t)},
		{"stories260K.gguf", real3},
		{"stories260K-v1.gguf", real1},
	} {
		full, err := parseBytes(tc.data, tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		// Every header prefix, the first bytes of data, and all but the
		// last byte of the last tensor (trailing padding is optional).
		var end int64
		for _, ti := range full.Tensors {
			end = max(end, ti.Offset+ti.Size)
		}
		lengths := []int{int(end) - 1, int(full.DataOffset), int(full.DataOffset) + 1}
		stride := 1
		if testing.Short() && tc.name != "small.gguf" {
			stride = 29
		}
		for n := 0; n <= int(full.DataOffset)+1; n += stride {
			lengths = append(lengths, n)
		}
		for _, n := range lengths {
			_, err := parseBytes(tc.data[:n], tc.name)
			if err == nil {
				t.Fatalf("%s truncated to %d bytes: no error", tc.name, n)
			}
			if !strings.HasPrefix(err.Error(), "gguf "+tc.name+": ") {
				t.Fatalf("%s truncated to %d bytes: error does not name the file: %v", tc.name, n, err)
			}
		}
	}
}

func TestCorruptHeaders(t *testing.T) {
	const huge = uint64(1) << 62
	// valid returns a one-tensor v3 file, to show the builders are sound.
	valid := func() *raw {
		return newRaw(3, 1, 1).str("k").u32(uint32(typeUint32)).u32(7).
			tensorInfo("t", 0, 0, 4).padTo(32, 16)
	}
	tests := []struct {
		name string
		data []byte
		want string // substring of the error; "" means the file is valid
	}{
		{"valid", valid().b, ""},
		{"valid v1", newRaw(1, 1, 1).str("k").u32(uint32(typeString)).str("v").
			tensorInfo("t", 0, 0, 4).padTo(32, 16).b, ""},
		{"empty", nil, "magic"},
		{"bad magic", append([]byte("GGML"), valid().b[4:]...), "not a GGUF file"},
		{"version 0", newRaw(0, 0, 0).b, "unsupported GGUF version 0"},
		{"version 4", newRaw(4, 0, 0).b, "unsupported GGUF version 4"},
		{"big-endian", append([]byte("GGUF\x00\x00\x00\x03"), make([]byte, 16)...), "big-endian GGUF is not supported"},
		{"huge tensor count", newRaw(3, huge, 0).b, "tensor count"},
		{"huge metadata count", newRaw(3, 0, huge).b, "metadata count"},
		{"huge key length", newRaw(3, 0, 1).u64(huge).padTo(1, 32).b, "key length"},
		{"huge string length", newRaw(3, 0, 1).str("k").u32(uint32(typeString)).u64(huge).b, "string length"},
		{"huge string length v1", newRaw(1, 0, 1).str("k").u32(uint32(typeString)).u32(1 << 31).b, "string length"},
		{"huge array count", newRaw(3, 0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeUint32)).u64(huge).b, "array of uint32 count"},
		{"huge string array count", newRaw(3, 0, 1).str("k").u32(uint32(typeArray)).u32(uint32(typeString)).u64(1 << 40).b, "array of string count"},
		{"unknown value type", newRaw(3, 0, 1).str("k").u32(13).u32(0).b, "unknown value type 13"},
		{"unknown array element type", newRaw(3, 0, 1).str("k").u32(uint32(typeArray)).u32(99).u64(0).b, "unknown element type 99"},
		{"bool not 0 or 1", newRaw(3, 0, 1).str("k").u32(uint32(typeBool)).b, "bool"},
		{"duplicate key", newRaw(3, 0, 2).str("k").u32(uint32(typeUint8)).u8(0).str("k").u32(uint32(typeUint8)).u8(0).b, `duplicate key "k"`},
		{"arrays too deep", deepArrayBytes(maxArrayDepth + 1), "nested deeper"},
		{"bad alignment", newRaw(3, 0, 1).str(KeyAlignment).u32(uint32(typeUint32)).u32(33).b, "power of two"},
		{"zero alignment", newRaw(3, 0, 1).str(KeyAlignment).u32(uint32(typeUint32)).u32(0).b, "power of two"},
		{"string alignment", newRaw(3, 0, 1).str(KeyAlignment).u32(uint32(typeString)).str("32").b, "alignment must be"},
		{"too many dims", newRaw(3, 1, 0).tensorInfo("t", 0, 0, 1, 1, 1, 1, 1).padTo(32, 4).b, "5 dimensions"},
		{"unknown ggml type", newRaw(3, 1, 0).tensorInfo("t", 4, 0, 32).padTo(32, 64).b, "unknown ggml type 4"},
		{"partial block", newRaw(3, 1, 0).tensorInfo("t", 8, 0, 33).padTo(32, 68).b, "whole number"},
		{"partial K-quant super-block", newRaw(3, 1, 0).tensorInfo("blk.0.attn_q.weight", 12, 0, 128).padTo(32, 144).b, `"blk.0.attn_q.weight": 128 elements are not a whole number of 256-element Q4_K blocks`},
		{"truncated Q6_K block", newRaw(3, 1, 0).tensorInfo("blk.0.ffn_down.weight", 14, 0, 256).padTo(32, 209).b, `"blk.0.ffn_down.weight" (Q6_K): 210 bytes`},
		{"dimension overflow", newRaw(3, 1, 0).tensorInfo("t", 0, 0, 1<<40, 1<<40).b, "too many elements"},
		{"dimension too large", newRaw(3, 1, 0).tensorInfo("t", 0, 0, 1<<63).b, "too large"},
		{"size overflow", newRaw(3, 1, 0).tensorInfo("t", 0, 0, 1<<31, 1<<31).b, "overflow"},
		{"offset past EOF", newRaw(3, 1, 0).tensorInfo("t", 0, 1<<20, 4).padTo(32, 16).b, "past the end"},
		{"offset huge", newRaw(3, 1, 0).tensorInfo("t", 0, 1<<63, 4).padTo(32, 16).b, "offset"},
		{"data past EOF", newRaw(3, 1, 0).tensorInfo("t", 0, 0, 8).padTo(32, 16).b, "past the end"},
		{"unaligned offset", newRaw(3, 1, 0).tensorInfo("t", 0, 4, 4).padTo(32, 32).b, "not a multiple of the alignment"},
		{"duplicate tensor name", newRaw(3, 2, 0).tensorInfo("t", 0, 0, 4).tensorInfo("t", 0, 32, 4).padTo(32, 64).b, `duplicate tensor name "t"`},
		{"overlapping tensors", newRaw(3, 2, 0).tensorInfo("a", 0, 0, 16).tensorInfo("b", 0, 32, 4).padTo(32, 64).b, "overlap"},
		{"overlap across an empty tensor", newRaw(3, 3, 0).tensorInfo("a", 0, 0, 32).tensorInfo("e", 0, 32, 0).tensorInfo("b", 0, 64, 4).padTo(32, 128).b, "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "corrupt-" + strings.ReplaceAll(tt.name, " ", "_") + ".gguf"
			_, err := parseBytes(tt.data, name)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid file rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q should name %s and contain %q", err, name, tt.want)
			}
		})
	}
}

func TestBigEndianSentinel(t *testing.T) {
	_, err := parseBytes([]byte("GGUF\x00\x00\x00\x02\x00\x00\x00\x00"), "be.gguf")
	if !errors.Is(err, ErrBigEndian) {
		t.Errorf("got %v, want ErrBigEndian", err)
	}
}

// deepArrayBytes encodes a metadata value of arrays nested depth deep.
func deepArrayBytes(depth int) []byte {
	r := newRaw(3, 0, 1).str("k").u32(uint32(typeArray))
	for range depth - 1 {
		r.u32(uint32(typeArray)).u64(1)
	}
	r.u32(uint32(typeUint8)).u64(1)
	r.b = append(r.b, 0)
	return r.b
}

func TestNestingAtLimit(t *testing.T) {
	f, err := parseBytes(deepArrayBytes(maxArrayDepth), "deep.gguf")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := f.Get("k")
	for range maxArrayDepth - 1 {
		outer, ok := v.([]any)
		if !ok || len(outer) != 1 {
			t.Fatalf("got %#v", v)
		}
		v = outer[0]
	}
	if b, ok := v.([]uint8); !ok || len(b) != 1 {
		t.Fatalf("innermost %#v", v)
	}
}
