package gguf

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// TestLegacyFormatsNamed checks that the files llama.cpp wrote before GGUF
// are named, with the way to convert them, rather than refused by their
// magic bytes alone.
func TestLegacyFormatsNamed(t *testing.T) {
	for _, c := range []struct {
		magic uint32 // as llama.cpp's LLAMA_FILE_MAGIC_* constants
		name  string
		how   string
	}{
		{0x67676d6c, "GGML (unversioned)", "convert_llama_ggml_to_gguf.py"},
		{0x67676d66, "GGMF", "convert_llama_ggml_to_gguf.py"},
		{0x67676a74, "GGJT", "convert_llama_ggml_to_gguf.py"},
		{0x67676c61, "GGLA", "convert_lora_to_gguf.py"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A GGJT v3 header: magic and version, written little-endian.
			b := binary.LittleEndian.AppendUint32(nil, c.magic)
			b = binary.LittleEndian.AppendUint32(b, 3)
			b = append(b, make([]byte, 64)...)
			_, err := parseBytes(b, "old.bin")
			if !errors.Is(err, ErrLegacyFormat) {
				t.Fatalf("err %v, want ErrLegacyFormat", err)
			}
			for _, want := range []string{"old.bin", c.name, c.how} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}
