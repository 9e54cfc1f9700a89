package cpu

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/graft-ml/graft/core/tensor"
)

// The mat-vec of generation on a quantized weight, as llama.cpp computes
// it: each row of x (at most matVecRows of them) is rounded once to the
// 8-bit activation blocks the weight type pairs with (tensor.ActQ8K,
// ActQ8_0), then every weight row is an integer dot product with them
// (intdot.go). That is memory-bound where the float decode-then-FMA of
// matvec.go is compute-bound, and it rounds the activations the way
// llama.cpp's CPU backend does. It is the default for the types with
// integer kernels; SetExactMatVec(true) keeps the float path, which equals
// decoding the weight and multiplying in float32.

// SetExactMatVec chooses the mat-vec of quantized weights: false (the
// default) rounds the activation row to 8-bit blocks and takes integer
// dot products as llama.cpp does; true multiplies the exact float32
// activations by the decoded weights, like every other product. Products
// of more than two rows (prompts, training) always take the float path.
func (c *Backend) SetExactMatVec(exact bool) { c.exactMatVec.Store(exact) }

// ExactMatVec reports the choice of SetExactMatVec.
func (c *Backend) ExactMatVec() bool { return c.exactMatVec.Load() }

// intDotFor returns the integer kernel for a weight type: the assembly
// one where built, else the portable one; nil for a type without.
func intDotFor(dt tensor.DType) intDotRows {
	if k := intDotAsm[dt]; k != nil {
		return k
	}
	if k := intDotGo[dt]; k != nil {
		return rowsOf(k)
	}
	return nil
}

// actRowBytes is the size of one row of k activations rounded for a
// VecDotType (see quantizeActs), and the values per activation block; 0
// for a type without.
func actRowBytes(vt tensor.VecDotType, k int) (bytes, elems int) {
	switch vt {
	case tensor.VecDotQ8K:
		return k / 256 * (int(unsafe.Sizeof(tensor.ActQ8K{})) + q8kPairBytes), 256
	case tensor.VecDotQ8_0:
		return q80AuxOffset(k/32) + 8*(k/32), 32
	}
	return 0, 0
}

// q80AuxOffset is where a row of nb Q8_0 activation blocks ends, rounded
// up to 4 bytes: the blocks' scales as float32 start there, then the
// sums of their quants as int32. The generated amd64 32-value kernels
// read them (tools/asmgen/intdot.go); the portable and arm64 ones read
// the blocks only.
func q80AuxOffset(nb int) int { return (nb*int(unsafe.Sizeof(tensor.ActQ8_0{})) + 3) &^ 3 }

// matVecInt computes out[i, j] (+)= alpha * dot(a[i, :], w[j, :]) for
// m <= matVecRows rows of a with the integer kernels, and reports whether
// it did (false: the weight, its shape or the backend's setting asks for
// the float path).
func (c *Backend) matVecInt(out, a []float32, w *buffer, m, n, k int, alpha float32, acc bool) bool {
	if m > matVecRows || k == 0 || w.st.raw == nil || c.exactMatVec.Load() {
		return false
	}
	kern := intDotFor(w.dtype)
	rowBytes, aelems := actRowBytes(w.dtype.VecDotType(), k)
	if kern == nil || rowBytes == 0 || k%aelems != 0 || k%w.dtype.BlockElems() != 0 {
		return false
	}
	// The activation blocks live in float32 scratch (4-byte aligned, as
	// ActQ8K's float32 scale needs).
	p := getScratch((m*rowBytes + 3) / 4)
	defer putScratch(p)
	acts := unsafe.Slice((*byte)(unsafe.Pointer(&(*p)[0])), m*rowBytes)
	for i := range m {
		quantizeActs(w.dtype.VecDotType(), a[i*k:(i+1)*k], acts[i*rowBytes:(i+1)*rowBytes])
	}
	grain := minParallelFlops/(2*m*k) + 1
	runTask(c, &c.tasks.matVecInt, n, grain, matVecIntTask{
		out: out, acts: acts, w: w, kern: kern, m: m, n: n, k: k, actRow: rowBytes, alpha: alpha, acc: acc,
	})
	return true
}

// q8kPairBytes is what follows a row's Q8_K blocks per block: the 8 int16
// sums of its pairs of bsums, sub-blocks of 32 values, which Q4_K's and
// Q5_K's mins multiply (the generated amd64 kernels read them; the
// portable and arm64 ones read the blocks only).
const q8kPairBytes = 16

// quantizeActs rounds x to the activation blocks of vt in dst (a row of
// actRowBytes): for Q8_K, the blocks' bsum pair sums follow them; for
// Q8_0, the blocks' scales widened to float32 and the sums of their quants.
func quantizeActs(vt tensor.VecDotType, x []float32, dst []byte) {
	var err error
	switch vt {
	case tensor.VecDotQ8K:
		nb := len(x) / 256
		blocks := unsafe.Slice((*tensor.ActQ8K)(unsafe.Pointer(&dst[0])), nb)
		err = tensor.QuantizeQ8K(x, blocks)
		aux := dst[nb*int(unsafe.Sizeof(tensor.ActQ8K{})):]
		for i := range blocks {
			for j := range 8 {
				pair := blocks[i].Bsums[2*j] + blocks[i].Bsums[2*j+1] // |.| <= 2*16*128
				binary.LittleEndian.PutUint16(aux[q8kPairBytes*i+2*j:], uint16(pair))
			}
		}
	case tensor.VecDotQ8_0:
		nb := len(x) / 32
		blocks := unsafe.Slice((*tensor.ActQ8_0)(unsafe.Pointer(&dst[0])), nb)
		err = tensor.QuantizeQ8_0(x, blocks)
		aux := dst[q80AuxOffset(nb):]
		for i := range blocks {
			var sum int32
			for _, q := range blocks[i].Qs {
				sum += int32(q)
			}
			binary.LittleEndian.PutUint32(aux[4*i:], math.Float32bits(tensor.F16ToF32(blocks[i].D)))
			binary.LittleEndian.PutUint32(aux[4*(nb+i):], uint32(sum))
		}
	}
	if err != nil {
		panic("cpu: MatMul: " + err.Error()) // the caller sized dst: a bug here
	}
}

// matVecIntTask is matVecInt over a range of weight rows.
type matVecIntTask struct {
	out    []float32
	acts   []byte // m rows of activation blocks, actRow bytes each
	w      *buffer
	kern   intDotRows
	m      int
	n, k   int
	actRow int
	alpha  float32
	acc    bool
}

// intDotChunk is how many weight rows a kernel call takes: few enough
// that they are still in the cache for the second activation row, and
// that their results fit on the stack.
const intDotChunk = 32

func (t *matVecIntTask) run(lo, hi int) {
	blocks := t.k / t.w.dtype.BlockElems()
	rowBytes := blocks * t.w.dtype.BlockBytes()
	raw := t.w.st.raw
	_ = raw[hi*rowBytes-1]
	var res [intDotChunk]float32
	for j := lo; j < hi; j += intDotChunk {
		rows := min(intDotChunk, hi-j)
		for i := range t.m {
			out := t.out[i*t.n+j : i*t.n+j+rows]
			if t.alpha == 1 && !t.acc {
				// store would write 1*s: the kernel's results as they are.
				t.kern(rows, blocks, &raw[j*rowBytes], rowBytes, &t.acts[i*t.actRow], &out[0])
				continue
			}
			t.kern(rows, blocks, &raw[j*rowBytes], rowBytes, &t.acts[i*t.actRow], &res[0])
			for r, s := range res[:rows] {
				store(&out[r], s, t.alpha, t.acc)
			}
		}
	}
}
