package cpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// loadNF4 keeps an NF4 tensor as parsed codes and block scales rather than
// raw bytes, so decoding a tile needs no parsing: the codes are copied
// (Load keeps its own copy) and plain float32 scales are decoded once,
// which costs no more memory than the bytes they came from. Double-quantized
// scales stay 8-bit and are dequantized per block as tiles are decoded.
func loadNF4(b *buffer, t *tensor.Tensor) error {
	d, err := tensor.ParseNF4(t.Data)
	if err != nil {
		return fmt.Errorf("cpu: load tensor %q: %w", t.Name, err)
	}
	d.Codes = append([]byte(nil), d.Codes...)
	if d.AbsmaxCodes != nil {
		d.AbsmaxCodes = append([]byte(nil), d.AbsmaxCodes...)
	}
	b.st.nf4 = d
	return nil
}

// decodeNF4 dequantizes an element range of a loaded NF4 weight. Ranges
// come from the operations' own shape checks, so a failure is a bug here.
func decodeNF4(d *tensor.NF4Data, start int, dst []float32) {
	if err := tensor.DequantizeNF4Range(d, start, dst); err != nil {
		panic(fmt.Sprintf("cpu: decode NF4 elements [%d, %d): %v", start, start+len(dst), err))
	}
}

// ResidentBytes returns the host memory that holds the given buffers'
// contents: 4 bytes an element for F32, the encoded size for weights kept
// in another dtype, and nothing for views (their storage is counted with
// the buffer they view) or freed buffers. It is how reports compare an F32
// base with a quantized one.
func (c *Backend) ResidentBytes(bufs ...backend.Buffer) int64 {
	var total int64
	for _, x := range bufs {
		b, err := c.lookup(x)
		if err != nil || b.view {
			continue
		}
		switch st := b.st; {
		case st.nf4 != nil:
			total += st.nf4.ResidentBytes()
		case st.raw != nil:
			total += int64(len(st.raw))
		default:
			total += 4 * int64(len(st.f32))
		}
	}
	return total
}
