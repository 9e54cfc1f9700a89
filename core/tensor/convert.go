package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// F16ToF32 converts an IEEE 754 binary16 value to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	}
	// Subnormal: shift the mantissa up until its leading bit is implicit.
	e := uint32(113)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// F32ToF16 converts float32 to binary16 with round-to-nearest-even,
// overflowing to infinity and keeping NaN a NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rounded := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && rounded&1 == 1) {
			rounded++
		}
		return sign | uint16(rounded)
	}
	rounded := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && rounded&1 == 1) {
		rounded++ // may carry into the exponent, which is the correct result
	}
	return sign | uint16(rounded)
}

// BF16ToF32 converts a bfloat16 value to float32 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts float32 to bfloat16 with round-to-nearest-even, as
// PyTorch does.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// PutFloat32s writes values little-endian into dst, which must hold 4*len(values) bytes.
func PutFloat32s(dst []byte, values []float32) {
	for i, v := range values {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

// Encode converts float32 values to the storage of a scalar float type or a
// quantized type (F32, F16, BF16, NF4 and every ggml type of QuantTypes,
// with ggml's reference quantizers). len(src) must be a whole number of
// blocks; dst must have exactly the size dt requires. NF4 is encoded
// without double quantization (QuantizeNF4 offers both).
func Encode(dt DType, src []float32, dst []byte) error {
	want, err := dt.Bytes(int64(len(src)))
	if err != nil {
		return err
	}
	if int64(len(dst)) != want {
		return fmt.Errorf("encode %v: %d values need %d bytes, have %d", dt, len(src), want, len(dst))
	}
	switch dt {
	case F32:
		PutFloat32s(dst, src)
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(v))
		}
	case Q8_0:
		quantizeQ8_0(src, dst)
	case Q4_0:
		quantizeQ4_0(src, dst)
	case Q4_1:
		quantizeQ4_1(src, dst)
	case Q5_0:
		quantizeQ5_0(src, dst)
	case Q5_1:
		quantizeQ5_1(src, dst)
	case Q2_K:
		quantizeQ2_K(src, dst)
	case Q3_K:
		quantizeQ3_K(src, dst)
	case Q4_K:
		quantizeQ4_K(src, dst)
	case Q5_K:
		quantizeQ5_K(src, dst)
	case Q6_K:
		quantizeQ6_K(src, dst)
	case IQ4_NL:
		quantizeIQ4_NL(src, dst)
	case IQ4_XS:
		quantizeIQ4_XS(src, dst)
	case NF4:
		encodeNF4(src, dst)
	default:
		return fmt.Errorf("encode: unsupported dtype %v", dt)
	}
	return nil
}

// Decode converts storage of type dt into float32 values. len(dst) elements
// are decoded from the start of src. NF4 storage is a whole tensor's layout
// (either kind), of which the first len(dst) elements are decoded.
func Decode(dt DType, src []byte, dst []float32) error {
	if dt == NF4 {
		if err := decodeNF4(src, dst); err != nil {
			return fmt.Errorf("decode NF4: %w", err)
		}
		return nil
	}
	need, err := dt.Bytes(int64(len(dst)))
	if err != nil {
		return fmt.Errorf("decode %v: %w", dt, err)
	}
	if int64(len(src)) < need {
		return fmt.Errorf("decode %v: %d values need %d bytes, have %d", dt, len(dst), need, len(src))
	}
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	case Q8_0:
		dequantizeQ8_0(src, dst)
	case Q4_0:
		dequantizeQ4_0(src, dst)
	case Q4_1:
		dequantizeQ4_1(src, dst)
	case Q5_0:
		dequantizeQ5_0(src, dst)
	case Q5_1:
		dequantizeQ5_1(src, dst)
	case Q2_K:
		dequantizeQ2_K(src, dst)
	case Q3_K:
		dequantizeQ3_K(src, dst)
	case Q4_K:
		dequantizeQ4_K(src, dst)
	case Q5_K:
		dequantizeQ5_K(src, dst)
	case Q6_K:
		dequantizeQ6_K(src, dst)
	case IQ4_NL:
		dequantizeIQ4_NL(src, dst)
	case IQ4_XS:
		dequantizeIQ4_XS(src, dst)
	default:
		return fmt.Errorf("decode: unsupported dtype %v", dt)
	}
	return nil
}
