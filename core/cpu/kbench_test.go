package cpu

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// BenchmarkGemmKernel measures each micro-kernel alone on panels that sit
// in L1: the ceiling the packed matrix product can reach on one core.
func BenchmarkGemmKernel(b *testing.B) {
	for _, kern := range gemmKernels {
		const kc = gemmKC
		a, w := make([]float32, kc*kern.mr), make([]float32, kc*kern.nr)
		c := make([]float32, kern.mr*kern.nr)
		b.Run(kern.name, func(b *testing.B) {
			for b.Loop() {
				kern.tile(kc, a, w, c, kern.nr, 1, true)
			}
			b.ReportMetric(2*float64(kern.mr*kern.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkPackRows measures packing a 1024 x 576 operand into panels of
// 12 rows (the AVX-512 kernel's), which every packed product pays once
// per operand.
func BenchmarkPackRows(b *testing.B) {
	const m, k, mr = 1024, 576, 12
	src := make([]float32, m*k)
	dst := make([]float32, m*gemmKC)
	for b.Loop() {
		for p0 := 0; p0 < k; p0 += gemmKC {
			kc := min(gemmKC, k-p0)
			for i0 := 0; i0+mr <= m; i0 += mr {
				packRows(dst[i0*kc:], src[i0*k+p0:], k, mr, mr, kc)
			}
		}
	}
	b.ReportMetric(float64(m/mr*mr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gfloat/s")
}

// streamTask reads its slice once, in pieces of streamPiece floats, each
// summed (with itself, so one stream) by the dot kernel.
type streamTask struct {
	data []float32
	sink []float32
}

const streamPiece = 1 << 14

func (s *streamTask) run(lo, hi int) {
	for p := lo; p < hi; p++ {
		x := s.data[p*streamPiece : (p+1)*streamPiece]
		s.sink[p] = dot(x, x)
	}
}

// streamGBs is the read bandwidth BenchmarkMatVecBandwidth/stream
// measured, for the ratios of the runs after it.
var streamGBs float64

// bandwidthBytes is the size of the array and of each weight: well past
// the last-level cache, so both read memory.
const bandwidthBytes = 96 << 20

// BenchmarkMatVecBandwidth compares the mat-vec of generation on Q4_K
// and Q6_K weights (the types of Q4_K_M files) with the machine's
// streaming read bandwidth: the default integer mat-vec (matvec_int.go)
// and, as "/exact", the float one (SetExactMatVec), measured first in the same run by a STREAM-like
// read of an array of the same size on the same threads. Each reports
// GB/s of bytes read; the weight runs add "stream/x", the streaming
// bandwidth over theirs (issue 14's target: at most 1.25).
func BenchmarkMatVecBandwidth(b *testing.B) {
	c := New()
	b.Run("stream", func(b *testing.B) {
		data := make([]float32, bandwidthBytes/4)
		for i := range data {
			data[i] = float32(i%7) * 0.25
		}
		t := &streamTask{data: data, sink: make([]float32, len(data)/streamPiece)}
		b.SetBytes(bandwidthBytes)
		for b.Loop() {
			c.parallel(len(t.sink), 1, t)
		}
		streamGBs = float64(bandwidthBytes) * float64(b.N) / b.Elapsed().Seconds() / 1e9
		b.ReportMetric(streamGBs, "GB/s")
	})
	const k = 4096
	for _, run := range []struct {
		dt    tensor.DType
		exact bool
	}{{tensor.Q4_K, false}, {tensor.Q6_K, false}, {tensor.Q4_K, true}, {tensor.Q6_K, true}} {
		dt := run.dt
		name := dt.String()
		if run.exact {
			name += "/exact"
		}
		b.Run(name, func(b *testing.B) {
			c.SetExactMatVec(run.exact)
			defer c.SetExactMatVec(false)
			wb, x, dst, n, rowBytes := bandwidthOperands(b, c, dt, k)
			b.SetBytes(int64(n * rowBytes))
			for b.Loop() {
				c.MatMul(dst, x, wb, backend.MatMul{TransB: true})
			}
			gbs := float64(n*rowBytes) * float64(b.N) / b.Elapsed().Seconds() / 1e9
			b.ReportMetric(gbs, "GB/s")
			if streamGBs > 0 {
				b.ReportMetric(streamGBs/gbs, "stream/x")
			}
		})
	}
}

// BenchmarkMatVecBandwidthPaired is BenchmarkMatVecBandwidth's ratio
// measured so that a machine whose memory bandwidth drifts (a shared
// host: the streaming read moved between 19 and 27 GB/s from one run to
// the next here) does not decide it: each iteration times one streaming
// read of the array and one mat-vec of a weight of the same size, back to
// back, and "stream/x" is the median over the iterations of the ratio of
// the two times per byte. Weights are the integer mat-vec's (the default
// for generation).
func BenchmarkMatVecBandwidthPaired(b *testing.B) {
	c := New()
	data := make([]float32, bandwidthBytes/4)
	for i := range data {
		data[i] = float32(i%7) * 0.25
	}
	st := &streamTask{data: data, sink: make([]float32, len(data)/streamPiece)}
	const k = 4096
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q6_K} {
		b.Run(dt.String(), func(b *testing.B) {
			wb, x, dst, n, rowBytes := bandwidthOperands(b, c, dt, k)
			var ratios []float64
			var streamNs, weightNs float64
			for b.Loop() {
				t0 := time.Now()
				c.parallel(len(st.sink), 1, st)
				t1 := time.Now()
				c.MatMul(dst, x, wb, backend.MatMul{TransB: true})
				t2 := time.Now()
				perByteStream := float64(t1.Sub(t0)) / float64(bandwidthBytes)
				perByteWeight := float64(t2.Sub(t1)) / float64(n*rowBytes)
				ratios = append(ratios, perByteWeight/perByteStream)
				streamNs += float64(t1.Sub(t0))
				weightNs += float64(t2.Sub(t1))
			}
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "stream/x")
			b.ReportMetric(float64(bandwidthBytes)*float64(len(ratios))/streamNs, "stream-GB/s")
			b.ReportMetric(float64(n*rowBytes)*float64(len(ratios))/weightNs, "GB/s")
		})
	}
}

// bandwidthOperands makes a mat-vec of about bandwidthBytes of weight
// for the bandwidth benchmarks: n rows of k random dt blocks (rowBytes
// each, n a multiple of ntRows), an activation row and the output row.
// The weight is freed when the benchmark ends.
func bandwidthOperands(b *testing.B, c *Backend, dt tensor.DType, k int) (w, x, dst backend.Buffer, n, rowBytes int) {
	rowBytes = k / dt.BlockElems() * dt.BlockBytes()
	n = bandwidthBytes / rowBytes / ntRows * ntRows
	wt, err := tensor.New("w", dt, tensor.Shape{n, k}, randomBlocks(dt, n*k))
	if err != nil {
		b.Fatal(err)
	}
	if w, err = c.Load(wt); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Free(w) })
	x, dst = c.Zeros(1, k), c.Zeros(1, n)
	for i, xs := 0, x.(*buffer).data(); i < len(xs); i++ {
		xs[i] = float32(i%13) * 0.1
	}
	return w, x, dst, n, rowBytes
}

// halfScaleOffsets are the byte offsets of the half-float scales in a
// block of dt (a 32-value type's d comes first), for tests that fill
// blocks with random bytes but need finite scales.
func halfScaleOffsets(dt tensor.DType) []int {
	switch dt {
	case tensor.Q2_K:
		return []int{80, 82}
	case tensor.Q3_K:
		return []int{108}
	case tensor.Q4_K, tensor.Q5_K:
		return []int{0, 2}
	case tensor.Q6_K:
		return []int{208}
	}
	return []int{0}
}

// randomBlocks returns n values' worth of random blocks of dt with small
// finite half-float scales, quicker to make than quantizing random values.
func randomBlocks(dt tensor.DType, n int) []byte {
	bb := dt.BlockBytes()
	out := make([]byte, n/dt.BlockElems()*bb)
	r := rand.New(rand.NewPCG(9, 10))
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	for b := 0; b < len(out); b += bb {
		for _, off := range halfScaleOffsets(dt) {
			binary.LittleEndian.PutUint16(out[b+off:], tensor.F32ToF16(0.01+0.001*float32(b%7)))
		}
	}
	return out
}
