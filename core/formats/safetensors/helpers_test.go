package safetensors

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/graft-ml/graft/core/tensor"
)

// rawFile assembles a safetensors file from a literal header and data,
// so tests can express corruptions the writer would never produce.
func rawFile(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func parseBytes(b []byte, name string) (*File, error) {
	return Parse(bytes.NewReader(b), int64(len(b)), name)
}

func mustTensor(t testing.TB, name string, dt tensor.DType, shape tensor.Shape, data []byte) *tensor.Tensor {
	t.Helper()
	tt, err := tensor.New(name, dt, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// seqBytes returns n bytes counting up from seed, distinct per tensor.
func seqBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func encode(t testing.TB, tensors []*tensor.Tensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// countingReaderAt counts ReadAt calls to pin "one ReadAt per tensor".
type countingReaderAt struct {
	r     *bytes.Reader
	calls int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	return c.r.ReadAt(p, off)
}
