// Package tensor describes host-side tensors: their element types (including
// ggml's block-quantized layouts), shapes, and conversions to float32.
//
// Everything here is plain Go with no platform dependencies, so it builds for
// native targets, GOOS=js and GOOS=wasip1 alike.
package tensor

import "fmt"

// DType is the element type of a tensor as stored in a file or a buffer.
type DType uint8

// The element types graft understands. Block-quantized types (ggml's
// Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL in blocks of 32, its K-quants
// Q2_K to Q6_K and IQ4_XS in super-blocks of 256, and bitsandbytes' NF4) pack a fixed number of
// elements into a block with shared scales. The numbering is graft's own
// (new types are appended); GGUF's type ids live in core/formats/gguf.
const (
	Invalid DType = iota
	F32
	F16
	BF16
	Q8_0
	Q4_0
	NF4 // bitsandbytes 4-bit NormalFloat in blocks of 64; see NF4Data for the layout
	F64
	I8
	I16
	I32
	I64
	U8
	Bool
	U16
	U32
	U64
	Q4_1
	Q5_0
	Q5_1
	Q2_K
	Q3_K
	Q4_K
	Q5_K
	Q6_K
	IQ4_NL
	IQ4_XS
)

type dtypeInfo struct {
	name       string
	blockElems int // elements per block (1 for scalar types)
	blockBytes int // bytes per block
}

var dtypeInfos = [...]dtypeInfo{
	Invalid: {"invalid", 0, 0},
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	BF16:    {"BF16", 1, 2},
	Q8_0:    {"Q8_0", 32, 34},
	Q4_0:    {"Q4_0", 32, 18},
	NF4:     {"NF4", 64, 36}, // plain layout per block; Bytes adds the header and a partial block
	F64:     {"F64", 1, 8},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	U8:      {"U8", 1, 1},
	Bool:    {"BOOL", 1, 1},
	U16:     {"U16", 1, 2},
	U32:     {"U32", 1, 4},
	U64:     {"U64", 1, 8},
	Q4_1:    {"Q4_1", 32, 20},
	Q5_0:    {"Q5_0", 32, 22},
	Q5_1:    {"Q5_1", 32, 24},
	Q2_K:    {"Q2_K", qkK, 84},
	Q3_K:    {"Q3_K", qkK, 110},
	Q4_K:    {"Q4_K", qkK, 144},
	Q5_K:    {"Q5_K", qkK, 176},
	Q6_K:    {"Q6_K", qkK, 210},
	IQ4_NL:  {"IQ4_NL", 32, 18},
	IQ4_XS:  {"IQ4_XS", qkK, 136},
}

func (d DType) info() dtypeInfo {
	if int(d) < len(dtypeInfos) {
		return dtypeInfos[d]
	}
	return dtypeInfos[Invalid]
}

// String returns the conventional upper-case name (F32, Q8_0, ...).
func (d DType) String() string {
	if int(d) < len(dtypeInfos) {
		return dtypeInfos[d].name
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Valid reports whether d is a known element type.
func (d DType) Valid() bool { return d != Invalid && int(d) < len(dtypeInfos) }

// Quantized reports whether d is a block-quantized type.
func (d DType) Quantized() bool {
	switch d {
	case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS, NF4:
		return true
	}
	return false
}

// Float reports whether d holds floating-point values that graft can
// convert to float32 (directly or by dequantization).
func (d DType) Float() bool { return d == F32 || d == F16 || d == BF16 || d == F64 || d.Quantized() }

// QuantTypes lists ggml's block-quantized types that graft reads, writes
// and computes on, in ggml's order of type ids.
func QuantTypes() []DType {
	return []DType{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS}
}

// BlockElems is the number of elements in one block (1 for scalar types).
func (d DType) BlockElems() int { return d.info().blockElems }

// BlockBytes is the size in bytes of one block. For NF4 it is the 32 bytes
// of codes and the float32 scale of one block of 64 without double
// quantization; a whole NF4 tensor also has a header (see NF4Bytes).
func (d DType) BlockBytes() int { return d.info().blockBytes }

// ParseDType maps a name (case-sensitive, as written by String) to a DType.
func ParseDType(name string) (DType, error) {
	for i, in := range dtypeInfos {
		if i != int(Invalid) && in.name == name {
			return DType(i), nil
		}
	}
	return Invalid, fmt.Errorf("unknown dtype %q", name)
}

// Bytes returns the storage size of n elements of type d. It fails when d is
// unknown, when n is negative, when n is not a whole number of blocks, or
// when the size overflows int64. NF4 blocks run over the flattened tensor,
// so any n is whole; its size is that of the layout without double
// quantization, header included (NF4Bytes gives either).
func (d DType) Bytes(n int64) (int64, error) {
	if d == NF4 {
		return NF4Bytes(n, false)
	}
	in := d.info()
	if in.blockElems == 0 {
		return 0, fmt.Errorf("dtype %v has no size", d)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative element count %d", n)
	}
	if n%int64(in.blockElems) != 0 {
		return 0, fmt.Errorf("%d elements is not a whole number of %v blocks of %d", n, d, in.blockElems)
	}
	blocks := n / int64(in.blockElems)
	if blocks > (1<<62)/int64(in.blockBytes) {
		return 0, fmt.Errorf("%d elements of %v overflow", n, d)
	}
	return blocks * int64(in.blockBytes), nil
}
