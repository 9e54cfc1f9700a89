package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// wasmModule assembles a module from its sections (id, body).
func wasmModule(sections ...[]byte) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		out = append(out, s[0], byte(len(s)-1)) // bodies here are under 128 bytes
		out = append(out, s[1:]...)
	}
	return out
}

func TestInitialMemoryPages(t *testing.T) {
	typeSection := []byte{1, 1, 0x60, 0, 0} // one func type () -> ()
	cases := []struct {
		name   string
		module []byte
		pages  uint32
		ok     bool
		err    string
	}{
		{"min only", wasmModule(typeSection, []byte{5, 1, 0x00, 0x4c}), 76, true, ""},
		{"min and max", wasmModule([]byte{5, 1, 0x01, 0x80, 0x01, 0x80, 0x02}), 128, true, ""},
		{"no memory", wasmModule(typeSection), 0, false, ""},
		{"not wasm", []byte("GGUF\x03\x00\x00\x00"), 0, false, "not a WebAssembly"},
		{"section past the end", append(wasmModule(), 5, 9, 1), 0, false, "runs past the end"},
		{"truncated size", append(wasmModule(), 5, 0x80), 0, false, "truncated number"},
		{"truncated limits", wasmModule([]byte{5, 1}), 0, false, "truncated limits"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pages, ok, err := initialMemoryPages(c.module)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || pages != c.pages || ok != c.ok {
				t.Fatalf("got %d pages, ok %v, err %v; want %d, %v", pages, ok, err, c.pages, c.ok)
			}
		})
	}
	if pages, ok, err := initialMemoryPages(Plugin()); err != nil || !ok || pages == 0 {
		t.Fatalf("embedded plugin: %d pages, ok %v, err %v", pages, ok, err)
	}
}

// TestMemoryLimitBelowTheStart: a cap below the memory the plugin starts
// with is ErrMemoryLimit, naming the minimum, before anything compiles.
func TestMemoryLimitBelowTheStart(t *testing.T) {
	pages, _, err := initialMemoryPages(Plugin())
	if err != nil {
		t.Fatal(err)
	}
	need := int(pages+wasmPageMiB-1) / wasmPageMiB
	for _, limit := range []int{1, need - 1} {
		h, err := New(context.Background(), Options{MemoryLimitMB: limit})
		if h != nil {
			h.Close(context.Background())
		}
		if !errors.Is(err, ErrMemoryLimit) || errors.Is(err, ErrInvalidPlugin) {
			t.Fatalf("MemoryLimitMB %d: err = %v, want ErrMemoryLimit", limit, err)
		}
		if want := fmt.Sprintf("give at least %d", need); !strings.Contains(err.Error(), want) {
			t.Fatalf("MemoryLimitMB %d: %v does not say %q", limit, err, want)
		}
	}
}
