//go:build js && wasm

package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"syscall/js"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
)

// kernels instantiates the module or fails: make test-js runs these tests
// with node/go_js_wasm_exec, which exposes Go's memory.
func kernels(t *testing.T) *Kernels {
	t.Helper()
	k, err := Instantiate()
	if err != nil {
		t.Fatalf("%v (run the js tests with wasm/simd/node first on PATH, as make test-js does)", err)
	}
	return k
}

// shapes are the products checked: odd sizes that leave every edge of the
// 4 x 8 tile (rows past a multiple of 4, columns past 8 and past 4, a lone
// column), one-element ones, and stories260K's own (64, 172, 512).
var shapes = [][3]int{
	{1, 1, 1}, {1, 9, 3}, {3, 1, 7}, {4, 8, 1}, {5, 13, 11}, {7, 3, 2},
	{9, 31, 17}, {17, 64, 64}, {33, 172, 64}, {64, 64, 172}, {6, 512, 64}, {130, 12, 5},
}

func randn(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// reference computes the product in float64 with, for each element, the
// sum of the magnitudes of its terms (the scale of its rounding error).
func reference(dst0, a, b []float32, m, n, k int, transA, transB bool, alpha float32, acc bool) (want, scale []float64) {
	want, scale = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var s, mag float64
			for p := range k {
				ai, bj := a[i*k+p], b[p*n+j]
				if transA {
					ai = a[p*m+i]
				}
				if transB {
					bj = b[j*k+p]
				}
				s += float64(ai) * float64(bj)
				mag += math.Abs(float64(ai) * float64(bj))
			}
			want[i*n+j] = float64(alpha) * s
			scale[i*n+j] = math.Abs(float64(alpha)) * mag
			if acc {
				want[i*n+j] += float64(dst0[i*n+j])
				scale[i*n+j] += math.Abs(float64(dst0[i*n+j]))
			}
		}
	}
	return want, scale
}

// close reports the first element of got further from want than float32
// sums of k terms round (k+2 ulps of the terms' magnitude).
func close(got []float32, want, scale []float64, k int) error {
	for i, g := range got {
		if tol := float64(k+2) * 0x1p-24 * scale[i]; math.Abs(float64(g)-want[i]) > tol {
			return fmt.Errorf("element %d is %g, want %g (tolerance %g)", i, g, want[i], tol)
		}
	}
	return nil
}

// TestMatMul runs the kernel on every transpose and accumulate flag and
// compares it with float64 sums, then with core/cpu's portable Go kernels,
// through the backend, which must hand the product to the module.
func TestMatMul(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		m, n, kk := s[0], s[1], s[2]
		for flags := range 8 {
			transA, transB, acc := flags&1 != 0, flags&2 != 0, flags&4 != 0
			alpha := float32(1)
			if flags == 5 {
				alpha = -0.75
			}
			name := fmt.Sprintf("%dx%dx%d/transA=%v/transB=%v/acc=%v", m, n, kk, transA, transB, acc)
			a, b, dst0 := randn(r, m*kk), randn(r, kk*n), randn(r, m*n)
			want, scale := reference(dst0, a, b, m, n, kk, transA, transB, alpha, acc)
			got := append([]float32(nil), dst0...)
			var scratch []float32
			if transB {
				scratch = make([]float32, kk*n)
			}
			lda, ldb := kk, n
			if transA {
				lda = m
			}
			if transB {
				ldb = kk
			}
			prod := cpu.Product{Dst: got, A: a, B: b, Scratch: scratch, LdDst: n, LdA: lda, LdB: ldb,
				M: m, N: n, K: kk, TransA: transA, TransB: transB, Acc: acc, Alpha: alpha}
			if !k.MatMul(prod) {
				t.Fatalf("%s: declined", name)
			}
			if err := close(got, want, scale, kk); err != nil {
				t.Errorf("%s: wasm kernel: %v", name, err)
			}
			// The portable Go kernels on the same operands, and the same
			// product through the backend with the module installed.
			goOut := matmulBackend(t, nil, dst0, a, b, m, n, kk, transA, transB, alpha, acc)
			if err := close(goOut, want, scale, kk); err != nil {
				t.Errorf("%s: Go kernels: %v", name, err)
			}
			cnt := &counting{Kernels: k}
			viaBackend := matmulBackend(t, cnt, dst0, a, b, m, n, kk, transA, transB, alpha, acc)
			if err := close(viaBackend, want, scale, kk); err != nil {
				t.Errorf("%s: backend with the module: %v", name, err)
			}
			for i := range goOut {
				if d := math.Abs(float64(viaBackend[i] - goOut[i])); d > float64(kk+2)*0x1p-23*scale[i] {
					t.Errorf("%s: element %d: module %g, Go %g", name, i, viaBackend[i], goOut[i])
					break
				}
			}
			// x times a transposed weight (every forward projection) sums
			// each element in order in both, as the portable matmulNT's
			// dot1x4 does for each four columns: the same bits.
			if transB && !transA && n%4 == 0 {
				for i := range goOut {
					if math.Float32bits(viaBackend[i]) != math.Float32bits(goOut[i]) {
						t.Errorf("%s: element %d: module %g, Go %g: not the same bits", name, i, viaBackend[i], goOut[i])
						break
					}
				}
			}
			// Products above the call's break-even must reach the module.
			if big := m*n*kk >= 4096 && (!transB || m >= 4); big != (cnt.calls > 0) {
				t.Errorf("%s: the backend made %d calls to the module", name, cnt.calls)
			}
		}
	}
}

// TestMatMulStrided: views with rows further apart than their length
// (one attention head's columns): the kernel reads only the views (the
// gaps hold NaN, which would spread into any sum that read them) and
// writes only dst's view.
func TestMatMulStrided(t *testing.T) {
	k := kernels(t)
	r := rand.New(rand.NewPCG(3, 4))
	// embed stores the rows x cols matrix x with rows ld apart, gaps fill.
	embed := func(x []float32, rows, cols, ld int, fill float32) []float32 {
		out := make([]float32, (rows-1)*ld+cols+ld-cols)
		for i := range out {
			out[i] = fill
		}
		for i := range rows {
			copy(out[i*ld:i*ld+cols], x[i*cols:(i+1)*cols])
		}
		return out
	}
	for _, s := range [][3]int{{9, 13, 7}, {64, 8, 64}, {17, 64, 8}} {
		m, n, kk := s[0], s[1], s[2]
		for flags := range 8 {
			transA, transB, acc := flags&1 != 0, flags&2 != 0, flags&4 != 0
			name := fmt.Sprintf("%dx%dx%d/transA=%v/transB=%v/acc=%v", m, n, kk, transA, transB, acc)
			a, b, dst0 := randn(r, m*kk), randn(r, kk*n), randn(r, m*n)
			want, scale := reference(dst0, a, b, m, n, kk, transA, transB, 1, acc)
			ar, ac, br, bc := m, kk, kk, n
			if transA {
				ar, ac = kk, m
			}
			if transB {
				br, bc = n, kk
			}
			nan := float32(math.NaN())
			const sentinel = 12345
			dst := embed(dst0, m, n, n+3, sentinel)
			p := cpu.Product{Dst: dst, A: embed(a, ar, ac, ac+5, nan), B: embed(b, br, bc, bc+2, nan), Scratch: make([]float32, kk*n),
				LdDst: n + 3, LdA: ac + 5, LdB: bc + 2, M: m, N: n, K: kk, TransA: transA, TransB: transB, Acc: acc, Alpha: 1}
			if !k.MatMul(p) {
				t.Fatalf("%s: declined", name)
			}
			got := make([]float32, 0, m*n)
			for i := range m {
				got = append(got, dst[i*(n+3):i*(n+3)+n]...)
				for _, v := range dst[i*(n+3)+n : (i+1)*(n+3)] {
					if v != sentinel {
						t.Fatalf("%s: row %d: a gap of dst was overwritten with %g", name, i, v)
					}
				}
			}
			if err := close(got, want, scale, kk); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			// A view that runs past its slice is declined, not computed.
			p.Dst = dst[:len(dst)-4]
			if k.MatMul(p) {
				t.Errorf("%s: a dst view past the end of its slice was not declined", name)
			}
		}
	}
}

// counting counts the operations the backend hands to the kernels.
type counting struct {
	*Kernels
	calls, softmax, silu int
}

func (c *counting) MatMul(p cpu.Product) bool {
	c.calls++
	return c.Kernels.MatMul(p)
}

func (c *counting) SoftmaxRows(s cpu.SoftmaxRows) bool {
	c.softmax++
	return c.Kernels.SoftmaxRows(s)
}

func (c *counting) SoftmaxBackRows(s cpu.SoftmaxRows) bool {
	c.softmax++
	return c.Kernels.SoftmaxBackRows(s)
}

func (c *counting) SiLUMul(dst, gate, up []float32) bool {
	c.silu++
	return c.Kernels.SiLUMul(dst, gate, up)
}

func (c *counting) SiLUMulBackward(dgate, dup, dy, gate, up []float32) bool {
	c.silu++
	return c.Kernels.SiLUMulBackward(dgate, dup, dy, gate, up)
}

// matmulBackend computes the product with a CPU backend, with ext
// installed (nil: the portable kernels).
func matmulBackend(t *testing.T, ext cpu.External, dst0, a, b []float32, m, n, k int, transA, transB bool, alpha float32, acc bool) []float32 {
	t.Helper()
	cpu.UseExternal(ext)
	defer cpu.UseExternal(nil)
	c := cpu.NewWithThreads(1)
	buf := func(x []float32, r, cols int) backend.Buffer {
		bb := c.Zeros(r, cols)
		if err := c.Write(bb, 0, x); err != nil {
			t.Fatal(err)
		}
		return bb
	}
	ab := buf(a, m, k)
	if transA {
		ab = buf(a, k, m)
	}
	bb := buf(b, k, n)
	if transB {
		bb = buf(b, n, k)
	}
	d := buf(dst0, m, n)
	c.MatMul(d, ab, bb, backend.MatMul{TransA: transA, TransB: transB, Alpha: alpha, Accumulate: acc})
	out := make([]float32, m*n)
	if err := c.Read(d, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInstall: cpu.Kernels names the module once installed, and its own
// kernels again after UseExternal(nil).
func TestInstall(t *testing.T) {
	own := cpu.Kernels()
	if err := Install(); err != nil {
		t.Fatal(err)
	}
	defer cpu.UseExternal(nil)
	if got := cpu.Kernels(); got != Name {
		t.Errorf("cpu.Kernels() = %q after Install, want %q", got, Name)
	}
	cpu.UseExternal(nil)
	if got := cpu.Kernels(); got != own {
		t.Errorf("cpu.Kernels() = %q after UseExternal(nil), want %q", got, own)
	}
}

// TestWithoutMemory: where the loader does not expose Go's memory (plain
// Node, an older page), Instantiate says so and Install leaves the Go
// kernels in place.
func TestWithoutMemory(t *testing.T) {
	g := js.Global()
	mem := g.Get(MemoryGlobal)
	g.Delete(MemoryGlobal)
	defer g.Set(MemoryGlobal, mem)
	own := cpu.Kernels()
	err := Install()
	if err == nil || !strings.Contains(err.Error(), MemoryGlobal) {
		t.Fatalf("Install without the memory: error %v, want one naming %s", err, MemoryGlobal)
	}
	if got := cpu.Kernels(); got != own {
		t.Errorf("cpu.Kernels() = %q after a failed Install, want %q", got, own)
	}
}
