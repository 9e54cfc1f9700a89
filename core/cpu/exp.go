package cpu

import "math"

// expShift sets x[i] = exp(x[i] - m) and returns their sum: the inner loop
// of every softmax (attention rows, cross-entropy over a vocabulary). On
// amd64 with AVX2, and on arm64, it is switched to the assembly version at
// start-up.
var expShift = expShiftGo

// exp32 is exp for float32, accurate to about 2 ulp: the argument is split
// as x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so n ln2 is exact
// enough), exp(r) is a degree-7 polynomial (Cephes' expf coefficients)
// and 2^n goes into the exponent bits. Arguments below -87 give exp(-87),
// which keeps the result a normal float32; softmax only ever feeds it
// x - max <= 0, where that floor is far below any weight that matters.
// A NaN stays NaN. expShiftAVX2 runs the same steps eight lanes at a time,
// expShiftNEON four.
func exp32(x float32) float32 {
	const (
		log2e  = 1.44269504
		ln2Hi  = 0.693359375
		ln2Lo  = -2.12194440e-4
		lowest = -87
	)
	if x != x {
		return x
	}
	if x < lowest {
		x = lowest
	}
	// Adding and taking away 1.5*2^23 rounds to the nearest integer (ties
	// to even, as ROUNDPS does) in float32 arithmetic, without a call.
	const round = 12582912
	n := x*log2e + round
	n -= round
	r := x - n*ln2Hi
	r -= n * ln2Lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*(r*r) + r + 1
	return math.Float32frombits(math.Float32bits(p) + uint32(int32(n))<<23)
}

func expShiftGo(x []float32, m float32) float32 {
	var sum float32
	for i, v := range x {
		e := exp32(v - m)
		x[i] = e
		sum += e
	}
	return sum
}
