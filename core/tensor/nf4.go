package tensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// NF4 layout constants.
const (
	NF4BlockSize       = 64  // elements per NF4 block
	NF4NestedBlockSize = 256 // absmax values per block of double quantization
	nf4HeaderSize      = 12
	nf4FlagDouble      = 1
)

var nf4Magic = [3]byte{'N', 'F', '4'}

// nf4Code is the NF4 code book: the 16 values bitsandbytes dequantizes to,
// quantiles of a standard normal rescaled to [-1, 1], with an exact zero.
var nf4Code = [16]float32{
	-1.0,
	-0.6961928009986877,
	-0.5250730514526367,
	-0.39491748809814453,
	-0.28444138169288635,
	-0.18477343022823334,
	-0.09105003625154495,
	0.0,
	0.07958029955625534,
	0.16093020141124725,
	0.24611230194568634,
	0.33791524171829224,
	0.44070982933044434,
	0.5626170039176941,
	0.7229568362236023,
	1.0,
}

// nf4Bounds are the decision thresholds of bitsandbytes' NF4 quantizer, in
// increasing order: a scaled value x gets the code equal to the number of
// thresholds it is strictly greater than. These are the constants of the
// kernel's comparison tree (roughly the midpoints between neighbouring
// codes, as float32), so a value exactly on a threshold takes the lower
// code, and NaN, greater than nothing, takes code 0.
var nf4Bounds = [15]float32{
	-0.8480964004993439,
	-0.6106329262256622,
	-0.4599952697753906,
	-0.33967943489551544,
	-0.23460740596055984,
	-0.13791173323988914,
	-0.045525018125772476,
	0.03979014977812767,
	0.1202552504837513,
	0.2035212516784668,
	0.2920137718319893,
	0.3893125355243683,
	0.5016634166240692,
	0.6427869200706482,
	0.8614784181118011,
}

// nf4Index returns the NF4 code of a value already scaled by 1/absmax.
// Four comparisons walk the balanced tree over nf4Bounds.
func nf4Index(x float32) byte {
	lo := 0 // the code is in [lo, lo+16)
	for half := 8; half > 0; half >>= 1 {
		if x > nf4Bounds[lo+half-1] {
			lo += half
		}
	}
	return byte(lo)
}

// NF4Data is an NF4 tensor in memory: its packed codes and the scale of
// every block, either as float32 or double-quantized; Bytes and ParseNF4
// convert it to and from the byte layout that Tensor.Data holds.
//
// NF4 is QLoRA's 4-bit NormalFloat, laid out so that graft's tensors are
// bit-compatible with bitsandbytes' quantize_4bit(quant_type="nf4",
// blocksize=64) and, with double quantization, compress_statistics=True.
//
// Quantization works on the row-major flattened tensor in blocks of 64
// elements (the last block may be partial). Each block keeps its largest
// magnitude, absmax, as float32; element x becomes the index of the NF4
// code nearest to x * (1/absmax), the reciprocal and the product both
// rounded to float32, exactly as bitsandbytes' CUDA kernel computes them.
// Dequantization is code[q] * absmax in float32.
//
// Double quantization stores the absmax values themselves in 8 bits: the
// mean of all absmax values (the offset) is subtracted, and the result is
// quantized in blocks of 256 with bitsandbytes' signed dynamic 8-bit map,
// each such block keeping its own float32 absmax (the nested absmax). A
// block's absmax is then dynamic[q] * nested + offset.
//
// Because blocks run over the flattened tensor, a weight [out, in] whose
// in is not a multiple of 64 has blocks that cross rows; every element is
// nevertheless addressable on its own (its code is a nibble, its block is
// index/64), so DequantizeNF4Range decodes any element range, and rows
// r0..r1 of such a weight are the range [r0*in, r1*in).
//
// The byte layout of Tensor.Data for DType NF4 (all numbers little-endian),
// for n elements in nb = ceil(n/64) blocks:
//
//	offset  size         field
//	0       3            magic "NF4"
//	3       1            flags: bit 0 set = double-quantized absmax; other bits 0
//	4       8            n, the element count (uint64), equal to the shape's
//	12      ceil(n/2)    codes: element i in byte i/2, the high nibble when i
//	                     is even (bitsandbytes packs the first of a pair high);
//	                     the low nibble of the last byte of an odd n is the
//	                     code bitsandbytes gives its zero padding
//	then, without double quantization:
//	        4*nb         absmax, float32 per block
//	or, with double quantization, for ng = ceil(nb/256) nested blocks:
//	        nb           absmax codes, one byte per block, into the dynamic map
//	        4*ng         nested absmax, float32 per 256 blocks
//	        4            offset, float32
//
// The header makes the data self-describing, so Decode can read it and
// Validate can check it against the shape without outside knowledge.
type NF4Data struct {
	N     int    // number of elements
	Codes []byte // ceil(N/2) bytes, two codes each, the first in the high nibble

	// Absmax holds one float32 scale per block of 64 when DoubleQuant is
	// false.
	Absmax []float32

	// With DoubleQuant, each block's scale is
	// dynamicMap[AbsmaxCodes[b]] * NestedAbsmax[b/256] + Offset.
	DoubleQuant  bool
	AbsmaxCodes  []byte
	NestedAbsmax []float32
	Offset       float32
}

// nf4Blocks returns the number of blocks of n elements, for blocks of size.
func nf4Blocks(n int64, size int64) int64 { return (n + size - 1) / size }

// NF4Bytes returns the size of the NF4 layout of n elements, header
// included, with or without double quantization. Any n >= 0 is allowed: the
// last block may be partial.
func NF4Bytes(n int64, doubleQuant bool) (int64, error) {
	if n < 0 {
		return 0, fmt.Errorf("negative element count %d", n)
	}
	if n > 1<<60 {
		return 0, fmt.Errorf("%d elements of NF4 overflow", n)
	}
	nb := nf4Blocks(n, NF4BlockSize)
	size := nf4HeaderSize + (n+1)/2
	if doubleQuant {
		size += nb + 4*nf4Blocks(nb, NF4NestedBlockSize) + 4
	} else {
		size += 4 * nb
	}
	return size, nil
}

// QuantizeNF4 quantizes values (a row-major flattened tensor) to NF4 in
// blocks of 64, optionally double-quantizing the block scales, with the
// arithmetic of bitsandbytes' quantize_4bit, so the codes and scales are
// the ones bitsandbytes produces. Non-finite values go through the same
// float32 arithmetic as there: a NaN becomes code 0, and a block whose
// scale is 0 or infinite dequantizes to zeros (some of them negative) and
// NaNs.
func QuantizeNF4(values []float32, doubleQuant bool) *NF4Data {
	n := len(values)
	nb := int(nf4Blocks(int64(n), NF4BlockSize))
	d := &NF4Data{N: n, Codes: make([]byte, (n+1)/2)}
	absmax := make([]float32, nb)
	for b := range nb {
		blk := values[b*NF4BlockSize : min(n, (b+1)*NF4BlockSize)]
		m := paddedAbsmax(blk, NF4BlockSize)
		absmax[b] = m
		inv := 1 / m
		for j, v := range blk {
			i := b*NF4BlockSize + j
			q := nf4Index(v * inv)
			if i%2 == 0 {
				d.Codes[i/2] = q << 4
			} else {
				d.Codes[i/2] |= q
			}
		}
	}
	if n%2 == 1 {
		// bitsandbytes quantizes the zero that pads an odd tensor too.
		d.Codes[n/2] |= nf4Index(0 * (1 / absmax[nb-1]))
	}
	if !doubleQuant {
		d.Absmax = absmax
		return d
	}
	d.DoubleQuant = true
	d.Offset = meanFloat32(absmax)
	centered := make([]float32, nb)
	for i, a := range absmax {
		centered[i] = a - d.Offset
	}
	d.AbsmaxCodes, d.NestedAbsmax = quantizeDynamic(centered, NF4NestedBlockSize)
	return d
}

// paddedAbsmax returns the largest magnitude in a block of size elements
// as bitsandbytes' kernel finds it: a running fmaxf from -MaxFloat32, so
// NaNs are skipped. A partial block is padded with zeros, which take part.
func paddedAbsmax(blk []float32, size int) float32 {
	m := float32(-math.MaxFloat32)
	for _, v := range blk {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	if len(blk) < size && m < 0 {
		m = 0
	}
	return m
}

// meanFloat32 returns the mean of values, summed in order in float64 and
// rounded once to float32. (bitsandbytes takes torch's mean, whose float32
// reduction order is unspecified; the float64 sum is exact for absmax
// values of similar magnitude, so this is the correctly rounded mean.) The
// mean of nothing is NaN, as in torch.
func meanFloat32(values []float32) float32 {
	if len(values) == 0 {
		return math.Float32frombits(0x7fc00000)
	}
	var s float64
	for _, v := range values {
		s += float64(v)
	}
	return float32(s / float64(len(values)))
}

// Bytes returns the byte layout of d (see NF4Data), header included.
func (d *NF4Data) Bytes() []byte {
	size, err := NF4Bytes(int64(d.N), d.DoubleQuant)
	if err != nil {
		panic(err) // N came from a slice length, so it cannot overflow
	}
	out := make([]byte, 0, size)
	out = append(out, nf4Magic[:]...)
	var flags byte
	if d.DoubleQuant {
		flags |= nf4FlagDouble
	}
	out = append(out, flags)
	out = binary.LittleEndian.AppendUint64(out, uint64(d.N))
	out = append(out, d.Codes...)
	appendF32 := func(vs ...float32) {
		for _, v := range vs {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	if d.DoubleQuant {
		out = append(out, d.AbsmaxCodes...)
		appendF32(d.NestedAbsmax...)
		appendF32(d.Offset)
	} else {
		appendF32(d.Absmax...)
	}
	return out
}

// nf4Header reads the header of an NF4 layout and returns the element
// count and whether the scales are double-quantized, checking the size.
func nf4Header(data []byte) (n int64, doubleQuant bool, err error) {
	if len(data) < nf4HeaderSize {
		return 0, false, fmt.Errorf("NF4 data of %d bytes is shorter than its %d-byte header", len(data), nf4HeaderSize)
	}
	if [3]byte(data[:3]) != nf4Magic {
		return 0, false, fmt.Errorf("NF4 data starts with %q, not %q", data[:3], nf4Magic[:])
	}
	flags := data[3]
	if flags&^nf4FlagDouble != 0 {
		return 0, false, fmt.Errorf("NF4 data has unknown flags %#x", flags)
	}
	u := binary.LittleEndian.Uint64(data[4:])
	if u > 1<<60 {
		return 0, false, fmt.Errorf("NF4 data claims %d elements", u)
	}
	n, doubleQuant = int64(u), flags&nf4FlagDouble != 0
	want, _ := NF4Bytes(n, doubleQuant)
	if int64(len(data)) != want {
		return 0, false, fmt.Errorf("NF4 data of %d elements (double quantization %v) needs %d bytes, have %d", n, doubleQuant, want, len(data))
	}
	return n, doubleQuant, nil
}

// ParseNF4 reads the NF4 layout. Codes and AbsmaxCodes share data's
// storage; the float32 scales are decoded into new slices.
func ParseNF4(data []byte) (*NF4Data, error) {
	n64, dq, err := nf4Header(data)
	if err != nil {
		return nil, err
	}
	if n64 != int64(int(n64)) {
		return nil, fmt.Errorf("NF4 data of %d elements does not fit in memory", n64)
	}
	n := int(n64)
	nb := int(nf4Blocks(n64, NF4BlockSize))
	rest := data[nf4HeaderSize:]
	take := func(k int) []byte {
		p := rest[:k:k]
		rest = rest[k:]
		return p
	}
	floats := func(k int) []float32 {
		p := take(4 * k)
		out := make([]float32, k)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		}
		return out
	}
	d := &NF4Data{N: n, Codes: take((n + 1) / 2), DoubleQuant: dq}
	if dq {
		d.AbsmaxCodes = take(nb)
		d.NestedAbsmax = floats(int(nf4Blocks(int64(nb), NF4NestedBlockSize)))
		d.Offset = floats(1)[0]
	} else {
		d.Absmax = floats(nb)
	}
	return d, nil
}

// check reports whether the slices of d have the lengths N implies, so
// decoding cannot index outside them.
func (d *NF4Data) check() error {
	if d == nil {
		return errors.New("nil NF4 data")
	}
	if d.N < 0 {
		return fmt.Errorf("NF4 data with %d elements", d.N)
	}
	nb := int(nf4Blocks(int64(d.N), NF4BlockSize))
	if len(d.Codes) != (d.N+1)/2 {
		return fmt.Errorf("NF4 data of %d elements has %d code bytes, want %d", d.N, len(d.Codes), (d.N+1)/2)
	}
	if !d.DoubleQuant {
		if len(d.Absmax) != nb {
			return fmt.Errorf("NF4 data of %d elements has %d absmax values, want %d", d.N, len(d.Absmax), nb)
		}
		return nil
	}
	ng := int(nf4Blocks(int64(nb), NF4NestedBlockSize))
	if len(d.AbsmaxCodes) != nb || len(d.NestedAbsmax) != ng {
		return fmt.Errorf("NF4 data of %d elements has %d absmax codes and %d nested scales, want %d and %d",
			d.N, len(d.AbsmaxCodes), len(d.NestedAbsmax), nb, ng)
	}
	return nil
}

// BlockAbsmax returns the scale of block b (elements [64b, 64b+64)),
// dequantizing it first under double quantization as bitsandbytes'
// dequantize_4bit does: dynamic[q] * nested, rounded, plus the offset.
func (d *NF4Data) BlockAbsmax(b int) float32 {
	if !d.DoubleQuant {
		return d.Absmax[b]
	}
	// The conversion rounds the product before the addition, so Go cannot
	// fuse them into an FMA that bitsandbytes does not perform.
	return float32(dynamicMap[d.AbsmaxCodes[b]]*d.NestedAbsmax[b/NF4NestedBlockSize]) + d.Offset
}

// ResidentBytes returns the memory d's slices hold: what an NF4 weight
// costs once loaded.
func (d *NF4Data) ResidentBytes() int64 {
	return int64(len(d.Codes) + 4*len(d.Absmax) + len(d.AbsmaxCodes) + 4*len(d.NestedAbsmax) + 4)
}

// DequantizeNF4Range decodes the elements [start, start+len(dst)) of d into
// dst. The range may start and end anywhere, inside a block or across rows.
func DequantizeNF4Range(d *NF4Data, start int, dst []float32) error {
	if err := d.check(); err != nil {
		return err
	}
	if start < 0 || start > d.N || len(dst) > d.N-start {
		return fmt.Errorf("NF4 range [%d, %d) is outside %d elements", start, start+len(dst), d.N)
	}
	for len(dst) > 0 {
		b := start / NF4BlockSize
		k := min(len(dst), (b+1)*NF4BlockSize-start)
		scale := d.BlockAbsmax(b)
		out := dst[:k]
		i := start
		if i%2 == 1 { // a leading low nibble
			out[0] = nf4Code[d.Codes[i/2]&0x0f] * scale
			out = out[1:]
			i++
		}
		for j := 0; j+1 < len(out); j += 2 {
			c := d.Codes[(i+j)/2]
			out[j] = nf4Code[c>>4] * scale
			out[j+1] = nf4Code[c&0x0f] * scale
		}
		if len(out)%2 == 1 { // a trailing high nibble
			out[len(out)-1] = nf4Code[d.Codes[(i+len(out)-1)/2]>>4] * scale
		}
		dst = dst[k:]
		start += k
	}
	return nil
}

// Dequantize returns all N values of d.
func (d *NF4Data) Dequantize() ([]float32, error) {
	out := make([]float32, d.N)
	if err := DequantizeNF4Range(d, 0, out); err != nil {
		return nil, err
	}
	return out, nil
}

// encodeNF4 writes the plain (single-quantized) NF4 layout of src into dst,
// which has exactly the size NF4.Bytes gives.
func encodeNF4(src []float32, dst []byte) {
	copy(dst, QuantizeNF4(src, false).Bytes())
}

// decodeNF4 decodes the first len(dst) elements of an NF4 layout.
func decodeNF4(src []byte, dst []float32) error {
	d, err := ParseNF4(src)
	if err != nil {
		return err
	}
	return DequantizeNF4Range(d, 0, dst)
}
