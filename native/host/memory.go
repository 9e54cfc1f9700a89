package host

import (
	"bytes"
	"errors"
	"fmt"
)

// wasmPageMiB is how many 64 KiB wasm pages make a MiB.
const wasmPageMiB = 16

// initialMemoryPages reads the initial size, in 64 KiB pages, of the
// memory a wasm module defines (its memory section's first entry). ok is
// false when the module defines no memory (it may import one). It reads
// only the section headers, so a limit too small for the plugin is named
// before the plugin is compiled; a malformed module is left to the
// compiler to report.
func initialMemoryPages(module []byte) (pages uint32, ok bool, err error) {
	const (
		sectionMemory = 5
		magicVersion  = "\x00asm\x01\x00\x00\x00"
	)
	if !bytes.HasPrefix(module, []byte(magicVersion)) {
		return 0, false, errors.New("not a WebAssembly version 1 module")
	}
	r := leb{b: module[len(magicVersion):]}
	for len(r.b) > 0 {
		id := r.b[0]
		r.b = r.b[1:]
		size, err := r.u32()
		if err != nil {
			return 0, false, fmt.Errorf("section %d: %w", id, err)
		}
		if uint64(size) > uint64(len(r.b)) {
			return 0, false, fmt.Errorf("section %d of %d bytes runs past the end", id, size)
		}
		body := leb{b: r.b[:size]}
		r.b = r.b[size:]
		if id != sectionMemory {
			continue
		}
		n, err := body.u32()
		if err != nil || n == 0 {
			return 0, false, err
		}
		if len(body.b) == 0 {
			return 0, false, errors.New("memory section: truncated limits")
		}
		body.b = body.b[1:] // limits flags: whether a maximum follows
		initial, err := body.u32()
		if err != nil {
			return 0, false, fmt.Errorf("memory section: %w", err)
		}
		return initial, true, nil
	}
	return 0, false, nil
}

// leb reads unsigned LEB128 numbers, as the wasm binary format stores
// sizes and counts.
type leb struct{ b []byte }

func (r *leb) u32() (uint32, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		if i >= len(r.b) {
			return 0, errors.New("truncated number")
		}
		c := r.b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			r.b = r.b[i+1:]
			if v > 1<<32-1 {
				return 0, errors.New("number over 32 bits")
			}
			return uint32(v), nil
		}
	}
	return 0, errors.New("number longer than 5 bytes")
}

// checkInitialMemory refuses a memory limit below the memory the plugin
// declares it starts with, naming the minimum, rather than letting the
// compiler reject the module as invalid.
func checkInitialMemory(module []byte, limitMB int) error {
	pages, ok, err := initialMemoryPages(module)
	if err != nil || !ok {
		return nil // the compiler names what is wrong with the module
	}
	if pages > uint32(limitMB)*wasmPageMiB {
		needMB := (pages + wasmPageMiB - 1) / wasmPageMiB
		return fmt.Errorf("host: %w: MemoryLimitMB %d is below the %d MiB the plugin starts with; give at least %d, plus room for the model and training",
			ErrMemoryLimit, limitMB, needMB, needMB)
	}
	return nil
}
