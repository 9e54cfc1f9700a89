package gguf

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// storiesPath is a file of the bundled stories260K: the v3 file and its
// v1 and Q8_0 v2 encodings, in the module's models/ folder.
func storiesPath(t testing.TB, file string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "models", "stories260K", file)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("bundled test model missing: %v", err)
	}
	return p
}

// readStories reads a file of the bundled stories260K.
func readStories(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(storiesPath(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseBytes(b []byte, name string) (*File, error) {
	return Parse(bytes.NewReader(b), int64(len(b)), name)
}

// raw builds GGUF bytes field by field, so tests can write what Write
// never would.
type raw struct {
	b    []byte
	wide bool // v2+ counts
}

func newRaw(version uint32, nTensors, nKVs uint64) *raw {
	r := &raw{wide: version >= 2}
	r.b = append(r.b, Magic...)
	r.u32(version)
	r.count(nTensors)
	r.count(nKVs)
	return r
}

func (r *raw) u8(v uint8) *raw   { r.b = append(r.b, v); return r }
func (r *raw) u32(v uint32) *raw { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) count(v uint64) *raw {
	if r.wide {
		return r.u64(v)
	}
	return r.u32(uint32(v))
}
func (r *raw) str(s string) *raw { r.count(uint64(len(s))); r.b = append(r.b, s...); return r }

// tensorInfo appends a tensor description with ne in ggml order.
func (r *raw) tensorInfo(name string, ggmlType uint32, offset uint64, ne ...uint64) *raw {
	r.str(name)
	r.u32(uint32(len(ne)))
	for _, d := range ne {
		r.count(d)
	}
	r.u32(ggmlType)
	return r.u64(offset)
}

// padTo appends zero bytes up to a multiple of align, then n more.
func (r *raw) padTo(align int, n int) *raw {
	for len(r.b)%align != 0 {
		r.b = append(r.b, 0)
	}
	r.b = append(r.b, make([]byte, n)...)
	return r
}
