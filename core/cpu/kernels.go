package cpu

// The inner loops every operation is built from. They are unrolled so the Go
// compiler keeps several independent accumulators in registers, and they
// reslice their operands to one length up front so bounds checks drop out of
// the loops. On amd64 with AVX2 and FMA, and on arm64 (NEON), the variables
// below are switched to the assembly versions in kernels_amd64.go and
// kernels_arm64.go at start-up.
var (
	dot    = dotGo
	dot1x4 = dot1x4Go
	axpy   = axpyGo
	axpy4  = axpy4Go
)

// dotGo returns the sum of a[i]*b[i] over len(a); b must be at least as long.
func dotGo(a, b []float32) float32 {
	var s [4]float32
	dotAccGo(a, b, &s)
	return (s[0] + s[1]) + (s[2] + s[3])
}

// dotAccGo adds the products a[i]*b[i] to dotGo's four running sums, so
// that a dot product can be taken a piece at a time (quantDotGo) in the
// order dotGo takes it whole, as long as every piece but the last is a
// multiple of 8 long.
func dotAccGo(a, b []float32, s *[4]float32) {
	b = b[:len(a)]
	s0, s1, s2, s3 := s[0], s[1], s[2], s[3]
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x, y := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += x[0]*y[0] + x[4]*y[4]
		s1 += x[1]*y[1] + x[5]*y[5]
		s2 += x[2]*y[2] + x[6]*y[6]
		s3 += x[3]*y[3] + x[7]*y[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	s[0], s[1], s[2], s[3] = s0, s1, s2, s3
}

// dot1x4Go returns the dot products of a with four vectors at once, loading
// each element of a once. (Blocking two rows of a against four vectors
// needs more registers than the Go compiler has to spare and measured
// slower; so did unrolling this loop.)
func dot1x4Go(a, b0, b1, b2, b3 []float32) (s0, s1, s2, s3 float32) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n]
	for i, x := range a {
		s0 += x * b0[i]
		s1 += x * b1[i]
		s2 += x * b2[i]
		s3 += x * b3[i]
	}
	return
}

// axpyGo sets dst[i] += alpha * x[i] over len(dst); x must be at least as long.
func axpyGo(dst, x []float32, alpha float32) {
	x = x[:len(dst)]
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		d, s := dst[i:i+4:i+4], x[i:i+4:i+4]
		d[0] += alpha * s[0]
		d[1] += alpha * s[1]
		d[2] += alpha * s[2]
		d[3] += alpha * s[3]
	}
	for ; i < len(dst); i++ {
		dst[i] += alpha * x[i]
	}
}

// axpy4Go sets dst[i] += a0*x0[i] + a1*x1[i] + a2*x2[i] + a3*x3[i]: four rank-1
// updates for one load and store of dst.
func axpy4Go(dst, x0, x1, x2, x3 []float32, a0, a1, a2, a3 float32) {
	n := len(dst)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for i := range dst {
		dst[i] += a0*x0[i] + a1*x1[i] + a2*x2[i] + a3*x3[i]
	}
}
