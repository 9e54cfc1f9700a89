package cpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// Matrix is a row-major matrix in memory the caller owns, for MatMulSlices:
// F32 values, or Raw bytes of a weight dtype that Load keeps encoded (F16,
// BF16, ggml's block types; not NF4, whose layout is graft's own).
type Matrix struct {
	DType      tensor.DType
	F32        []float32 // DType F32
	Raw        []byte    // any other dtype
	Rows, Cols int
}

// MatMulSlices is MatMul on plain slices rather than buffers: dst [m, n]
// (+)= alpha * op(a) * op(b), with a's shape aRows x aCols and op as in
// f. It exists for a plugin host that runs this package's kernels on views
// of its guest's linear memory (see native/host): the operands belong to
// the caller, so every length and shape is checked and a mismatch is an
// error, never a panic or a read past a slice. dst must not share memory
// with a or b; the caller, who knows where its views lie, checks that.
func (c *Backend) MatMulSlices(dst, a []float32, aRows, aCols int, b Matrix, f backend.MatMul) error {
	if aRows < 0 || aCols < 0 || b.Rows < 0 || b.Cols < 0 {
		return fmt.Errorf("cpu: MatMulSlices: negative shape a [%d, %d], b [%d, %d]", aRows, aCols, b.Rows, b.Cols)
	}
	if int64(aRows)*int64(aCols) != int64(len(a)) {
		return fmt.Errorf("cpu: MatMulSlices: a has %d values, not %d x %d", len(a), aRows, aCols)
	}
	m, k := aRows, aCols
	if f.TransA {
		m, k = aCols, aRows
	}
	kb, n := b.Rows, b.Cols
	if f.TransB {
		kb, n = b.Cols, b.Rows
	}
	if k != kb {
		return fmt.Errorf("cpu: MatMulSlices: op(a) is [%d, %d] and op(b) [%d, %d]: inner sizes differ", m, k, kb, n)
	}
	if int64(m)*int64(n) != int64(len(dst)) {
		return fmt.Errorf("cpu: MatMulSlices: dst has %d values, not %d x %d", len(dst), m, n)
	}
	numel := int64(b.Rows) * int64(b.Cols)
	wb := &buffer{owner: c, st: &storage{}, dtype: b.DType, shape: tensor.Shape{b.Rows, b.Cols}, n: int(numel)}
	switch {
	case b.DType == tensor.F32:
		if int64(len(b.F32)) != numel {
			return fmt.Errorf("cpu: MatMulSlices: b has %d values, not %d x %d", len(b.F32), b.Rows, b.Cols)
		}
		wb.st.f32 = b.F32
	case b.DType == tensor.NF4 || b.DType == tensor.F64 || !b.DType.Valid() || !b.DType.Float():
		return fmt.Errorf("cpu: MatMulSlices: b of dtype %v is not supported", b.DType)
	default:
		// Rows must start on block boundaries: the kernels decode from
		// row starts (and from column tiles of 256, a whole number of
		// blocks of every dtype).
		if be := b.DType.BlockElems(); b.Cols%be != 0 {
			return fmt.Errorf("cpu: MatMulSlices: b's rows of %d %v values are not whole blocks of %d", b.Cols, b.DType, be)
		}
		size, err := b.DType.Bytes(numel)
		if err != nil {
			return fmt.Errorf("cpu: MatMulSlices: b: %w", err)
		}
		if size != int64(len(b.Raw)) {
			return fmt.Errorf("cpu: MatMulSlices: b has %d bytes, %d x %d %v values take %d", len(b.Raw), b.Rows, b.Cols, b.DType, size)
		}
		if err := decodable(b.DType); err != nil {
			return fmt.Errorf("cpu: MatMulSlices: b: %w", err)
		}
		wb.st.raw = b.Raw
	}
	d := &buffer{owner: c, st: &storage{f32: dst}, dtype: tensor.F32, shape: tensor.Shape{m, n}, n: len(dst)}
	x := &buffer{owner: c, st: &storage{f32: a}, dtype: tensor.F32, shape: tensor.Shape{aRows, aCols}, n: len(a)}
	c.matmul(d, x, wb, f)
	return nil
}

// decodable reports whether the row decoder knows dt, as Load checks
// before keeping a weight's bytes.
func decodable(dt tensor.DType) error {
	probe := make([]float32, dt.BlockElems())
	if err := tensor.Decode(dt, make([]byte, dt.BlockBytes()), probe); err != nil {
		return err
	}
	return nil
}
