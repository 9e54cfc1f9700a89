package gguf

import (
	"fmt"

	"github.com/graft-ml/graft/core/tensor"
)

// ggmlTypeInfo is the storage layout of one ggml tensor type: blockElems
// elements are packed into blockBytes bytes.
type ggmlTypeInfo struct {
	name       string
	blockElems int64
	blockBytes int64
}

// ggmlTypes is indexed by ggml type id. Ids that ggml has retired (Q4_2,
// Q4_3, the Q4_0_x_y and IQ4_NL_x_y repacks) have no entry, so files that
// use them are rejected, as ggml itself rejects them. The layouts follow
// ggml's block structs; K-quants use super-blocks of 256 elements.
var ggmlTypes = map[uint32]ggmlTypeInfo{
	0:  {"F32", 1, 4},
	1:  {"F16", 1, 2},
	2:  {"Q4_0", 32, 18},
	3:  {"Q4_1", 32, 20},
	6:  {"Q5_0", 32, 22},
	7:  {"Q5_1", 32, 24},
	8:  {"Q8_0", 32, 34},
	9:  {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84},
	11: {"Q3_K", 256, 110},
	12: {"Q4_K", 256, 144},
	13: {"Q5_K", 256, 176},
	14: {"Q6_K", 256, 210},
	15: {"Q8_K", 256, 292},
	16: {"IQ2_XXS", 256, 66},
	17: {"IQ2_XS", 256, 74},
	18: {"IQ3_XXS", 256, 98},
	19: {"IQ1_S", 256, 50},
	20: {"IQ4_NL", 32, 18},
	21: {"IQ3_S", 256, 110},
	22: {"IQ2_S", 256, 82},
	23: {"IQ4_XS", 256, 136},
	24: {"I8", 1, 1},
	25: {"I16", 1, 2},
	26: {"I32", 1, 4},
	27: {"I64", 1, 8},
	28: {"F64", 1, 8},
	29: {"IQ1_M", 256, 56},
	30: {"BF16", 1, 2},
	34: {"TQ1_0", 256, 54},
	35: {"TQ2_0", 256, 66},
	39: {"MXFP4", 32, 17},
}

// ggmlToDType maps the ggml types graft can decode to its own dtypes.
var ggmlToDType = map[uint32]tensor.DType{
	0:  tensor.F32,
	1:  tensor.F16,
	2:  tensor.Q4_0,
	3:  tensor.Q4_1,
	6:  tensor.Q5_0,
	7:  tensor.Q5_1,
	8:  tensor.Q8_0,
	10: tensor.Q2_K,
	11: tensor.Q3_K,
	12: tensor.Q4_K,
	13: tensor.Q5_K,
	14: tensor.Q6_K,
	20: tensor.IQ4_NL,
	23: tensor.IQ4_XS,
	24: tensor.I8,
	25: tensor.I16,
	26: tensor.I32,
	27: tensor.I64,
	28: tensor.F64,
	30: tensor.BF16,
}

// GGMLTypeName returns the name of a ggml tensor type as ggml's enum spells
// it without the GGML_TYPE_ prefix ("F32", "Q8_0", "Q4_K", "IQ2_XS"), which
// is also how gguf-py names them. Unknown ids give "GGMLType(n)".
func GGMLTypeName(t uint32) string {
	if info, ok := ggmlTypes[t]; ok {
		return info.name
	}
	return fmt.Sprintf("GGMLType(%d)", t)
}

// DTypeOfGGML returns graft's dtype for a ggml type id, and false for the
// ggml types graft cannot decode or encode.
func DTypeOfGGML(t uint32) (tensor.DType, bool) {
	dt, ok := ggmlToDType[t]
	return dt, ok
}

// GGMLType returns the ggml type id that stores dt, and false when GGUF has
// no equivalent of dt (NF4, U8, Bool).
func GGMLType(dt tensor.DType) (uint32, bool) {
	for id, d := range ggmlToDType {
		if d == dt {
			return id, true
		}
	}
	return 0, false
}

// ggmlTensorBytes returns the storage size of n elements of ggml type t.
//
// Modern ggml also demands that each row (ne[0] elements) be a whole number
// of blocks, but files written by 2023 tools do not always obey: the Q8_0
// stories260K has ffn_down rows of 172 elements stored as one flat run of
// 32-element blocks that cross row boundaries. Such files are accepted here
// and TensorInfo.RowsSplitBlocks flags the tensors concerned.
func ggmlTensorBytes(t uint32, n int64) (int64, error) {
	info, ok := ggmlTypes[t]
	if !ok {
		return 0, fmt.Errorf("unknown ggml type %d", t)
	}
	if n%info.blockElems != 0 {
		return 0, fmt.Errorf("%d elements are not a whole number of %d-element %s blocks", n, info.blockElems, info.name)
	}
	blocks := n / info.blockElems
	if blocks > (1<<62)/info.blockBytes {
		return 0, fmt.Errorf("%d elements of %s overflow", n, info.name)
	}
	return blocks * info.blockBytes, nil
}

// RowsSplitBlocks reports whether the tensor's rows (its innermost
// dimension) are not a whole number of quantization blocks, so that blocks
// run across row boundaries. graft quantizes row by row, so ReadTensor
// dequantizes such a tensor to F32.
func (ti *TensorInfo) RowsSplitBlocks() bool {
	info, ok := ggmlTypes[ti.GGMLType]
	if !ok || info.blockElems == 1 || len(ti.Shape) == 0 {
		return false
	}
	return int64(ti.Shape[len(ti.Shape)-1])%info.blockElems != 0
}
