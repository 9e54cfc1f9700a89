package gguf

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Whatever it accepts must be
// self-consistent: tensors inside the file, readable without panics, and
// its metadata must survive a Write/Parse round trip.
func FuzzParse(f *testing.F) {
	f.Add(smallFile(f))
	for _, name := range []string{"stories260K-v1.gguf", "stories260K-q8_0-v2.gguf"} {
		b := readStories(f, name)
		f.Add(b[:2048])
	}
	f.Add(newRaw(1, 1, 1).str("k").u32(uint32(typeString)).str("v").tensorInfo("t", 8, 0, 64).padTo(32, 68).b)
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseBytes(data, "fuzz.gguf")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf fuzz.gguf: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, ti := range file.Tensors {
			if ti.Offset < file.DataOffset || ti.Offset+ti.Size > int64(len(data)) || ti.Offset%int64(file.Alignment) != 0 {
				t.Fatalf("tensor %q at %d+%d outside the %d-byte file", ti.Name, ti.Offset, ti.Size, len(data))
			}
			x, err := file.ReadTensor(ti.Name)
			if err != nil {
				continue
			}
			if err := x.Validate(); err != nil {
				t.Fatalf("ReadTensor returned an invalid tensor: %v", err)
			}
		}
		// Metadata that Write accepts must read back to the same bytes.
		var first bytes.Buffer
		if err := Write(&first, file.KVs, nil, 0); err != nil {
			return
		}
		again, err := parseBytes(first.Bytes(), "rewritten.gguf")
		if err != nil {
			t.Fatalf("written metadata does not parse: %v", err)
		}
		var second bytes.Buffer
		if err := Write(&second, again.KVs, nil, 0); err != nil {
			t.Fatalf("rewriting parsed metadata: %v", err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Fatal("metadata changed across a Write/Parse round trip")
		}
	})
}
