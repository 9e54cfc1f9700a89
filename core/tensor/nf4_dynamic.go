package tensor

import (
	"math"
	"slices"
)

// dynamicMap is bitsandbytes' signed dynamic 8-bit data type
// (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)),
// the code book of its blockwise 8-bit quantization, which double
// quantization uses for the NF4 block scales. For each decade e = 0..6 it
// holds the means of neighbouring points of a float32 linspace(0.1, 1,
// 2^e + 1), scaled by 10^(e-6), with both signs; then 0 and 1; sorted
// ascending. Entry 0 is about -0.993 and entry 255 is 1.
var dynamicMap = buildDynamicMap()

func buildDynamicMap() [256]float32 {
	var data []float32
	for e := range 7 {
		bounds := torchLinspace(0.1, 1, 1<<e+1)
		scale := float32(math.Pow10(e - 6))
		var means []float32
		for j := 0; j+1 < len(bounds); j++ {
			means = append(means, (bounds[j]+bounds[j+1])/2)
		}
		for _, m := range means {
			data = append(data, scale*m)
		}
		for _, m := range means {
			data = append(data, -scale*m)
		}
	}
	data = append(data, 0, 1)
	slices.Sort(data)
	return [256]float32(data)
}

// torchLinspace returns steps float32 values from start to end as
// PyTorch's CPU linspace computes them element by element: the first half
// counted up from start, the second half counted down from end, each step
// product rounded before it is added. (PyTorch's SIMD path, used for runs
// of 16 or more on some CPUs, can round a few points of the 17-, 33- and
// 65-point spaces differently, moving some map entries by one float32 ulp;
// a file that stores its map, as bitsandbytes' serialized quant state does,
// removes the ambiguity.)
func torchLinspace(start, end float32, steps int) []float32 {
	out := make([]float32, steps)
	step := (end - start) / float32(steps-1)
	for i := range out {
		if i < steps/2 {
			out[i] = start + float32(step*float32(i))
		} else {
			out[i] = end - float32(step*float32(steps-i-1))
		}
	}
	return out
}

// dynamicIndex returns the code bitsandbytes' 8-bit blockwise quantizer
// picks for x (already scaled into [-1, 1]): seven halving steps of a
// search that starts at entry 127, then a comparison with the midpoint
// toward the neighbour on x's side. The search never compares against
// entry 0 or 255 directly, and the midpoint test is strict on both sides,
// so exact ties go toward the final search position; all of this is kept
// so that the chosen codes are bitsandbytes' own.
func dynamicIndex(x float32) byte {
	pivot, upper, lower := 127, 255, 0
	val := dynamicMap[pivot]
	for step := 64; step > 0; step >>= 1 {
		if x > val {
			lower = pivot
			pivot += step
		} else {
			upper = pivot
			pivot -= step
		}
		val = dynamicMap[pivot]
	}
	if x > val {
		if x > (dynamicMap[upper]+val)*0.5 {
			return byte(upper)
		}
		return byte(pivot)
	}
	if x < (dynamicMap[lower]+val)*0.5 {
		return byte(lower)
	}
	return byte(pivot)
}

// quantizeDynamic quantizes values in blocks of size with the dynamic map,
// as bitsandbytes' quantize_blockwise does: each block's absmax (found
// like blockAbsmax finds it) and each element's code for x * (1/absmax).
func quantizeDynamic(values []float32, size int) (codes []byte, absmax []float32) {
	nb := int(nf4Blocks(int64(len(values)), int64(size)))
	codes = make([]byte, len(values))
	absmax = make([]float32, nb)
	for b := range nb {
		blk := values[b*size : min(len(values), (b+1)*size)]
		m := paddedAbsmax(blk, size)
		absmax[b] = m
		inv := 1 / m
		for j, v := range blk {
			codes[b*size+j] = dynamicIndex(v * inv)
		}
	}
	return codes, absmax
}
