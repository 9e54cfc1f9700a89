package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

// defaultTol is the relative tolerance of most comparisons; see close.
const defaultTol = 1e-4

// harness runs every step of a case on the backend under test and on the
// CPU oracle, keeping their buffers side by side.
type harness struct {
	t      *testing.T
	b, o   backend.Backend // under test, oracle
	rng    *rand.Rand
	nextID uint64
}

// pair is one logical buffer: its copy on the backend under test and on the
// oracle.
type pair struct {
	got, want backend.Buffer
	shape     []int
}

func newHarness(t *testing.T, b backend.Backend, seed uint64) *harness {
	t.Helper()
	if b == nil {
		t.Fatal("newBackend returned nil")
	}
	// The oracle's mat-vec of quantized weights is the exact float one
	// (the one every backend implements), unless the backend under test
	// says which it runs: the CPU backend's default rounds activations
	// to 8-bit blocks as llama.cpp does (cpu.Backend.SetExactMatVec).
	o := cpu.New()
	exact := true
	if mv, ok := b.(interface{ ExactMatVec() bool }); ok {
		exact = mv.ExactMatVec()
	}
	o.SetExactMatVec(exact)
	return &harness{t: t, b: b, o: o, rng: rand.New(rand.NewPCG(seed, 42))}
}

// randn returns n normal values times scale.
func (h *harness) randn(n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(h.rng.NormFloat64() * scale)
	}
	return out
}

// zeros allocates an F32 pair of zeros.
func (h *harness) zeros(shape ...int) pair {
	return pair{got: h.b.Zeros(shape...), want: h.o.Zeros(shape...), shape: shape}
}

// values allocates an F32 pair holding vals.
func (h *harness) values(vals []float32, shape ...int) pair {
	h.t.Helper()
	p := h.zeros(shape...)
	if err := h.b.Write(p.got, 0, vals); err != nil {
		h.t.Fatalf("%s: Write: %v", h.b.Name(), err)
	}
	if err := h.o.Write(p.want, 0, vals); err != nil {
		h.t.Fatalf("oracle Write: %v", err)
	}
	return p
}

// rand allocates an F32 pair of normal values times scale.
func (h *harness) rand(scale float64, shape ...int) pair {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return h.values(h.randn(n, scale), shape...)
}

// load encodes random values as dt and loads them into both backends.
func (h *harness) load(dt tensor.DType, scale float64, shape ...int) pair {
	h.t.Helper()
	n := tensor.Shape(shape).Numel()
	vals := h.randn(int(n), scale)
	size, err := dt.Bytes(n)
	if err != nil {
		h.t.Fatal(err)
	}
	data := make([]byte, size)
	if err := tensor.Encode(dt, vals, data); err != nil {
		h.t.Fatal(err)
	}
	h.nextID++
	tt, err := tensor.New(fmt.Sprintf("w%d", h.nextID), dt, tensor.Shape(shape).Clone(), data)
	if err != nil {
		h.t.Fatal(err)
	}
	got, err := h.b.Load(tt)
	if err != nil {
		h.t.Fatalf("%s: Load %v %v: %v", h.b.Name(), dt, shape, err)
	}
	want, err := h.o.Load(tt)
	if err != nil {
		h.t.Fatalf("oracle Load %v %v: %v", dt, shape, err)
	}
	if got.DType() != dt || !got.Shape().Equal(tensor.Shape(shape)) {
		h.t.Fatalf("%s: Load %v %v gave a %v %v buffer", h.b.Name(), dt, shape, got.DType(), got.Shape())
	}
	return pair{got: got, want: want, shape: shape}
}

// view makes the same view on both sides.
func (h *harness) view(p pair, off int, shape ...int) pair {
	return pair{got: h.b.View(p.got, off, shape...), want: h.o.View(p.want, off, shape...), shape: shape}
}

// read returns the contents of both sides of a pair, after Sync.
func (h *harness) read(p pair) (got, want []float32) {
	h.t.Helper()
	if err := h.b.Sync(); err != nil {
		h.t.Fatalf("%s: Sync: %v", h.b.Name(), err)
	}
	n := tensor.Shape(p.shape).Numel()
	got, want = make([]float32, n), make([]float32, n)
	if err := h.b.Read(p.got, 0, got); err != nil {
		h.t.Fatalf("%s: Read: %v", h.b.Name(), err)
	}
	if err := h.o.Read(p.want, 0, want); err != nil {
		h.t.Fatalf("oracle Read: %v", err)
	}
	return got, want
}

// close fails unless the two sides of p agree: |got-want| <= tol *
// (|want| + max|want|). Measuring the error against the largest value of
// the result as well as against the element itself accepts the rounding of
// a different summation order in elements that are small only because of
// cancellation, while still catching any real difference.
func (h *harness) close(what string, p pair, tol float64) {
	h.t.Helper()
	got, want := h.read(p)
	compare(h.t, h.b.Name()+": "+what, got, want, tol)
}

// reporter is the part of testing.TB compare needs, so its own test can
// watch it fail.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

func compare(t reporter, what string, got, want []float32, tol float64) {
	t.Helper()
	var scale float64
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d values, oracle %d", what, len(got), len(want))
		return
	}
	bad := 0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= tol*(math.Abs(float64(want[i]))+scale)) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.7g, oracle %.7g (diff %.3g, scale %.3g)", what, i, got[i], want[i], d, scale)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ beyond tolerance %g", what, bad, len(got), tol)
	}
}

// closeScalar compares two float64 results with a relative tolerance.
func (h *harness) closeScalar(what string, got, want, tol float64) {
	h.t.Helper()
	if !(math.Abs(got-want) <= tol*math.Abs(want)) {
		h.t.Errorf("%s: %s = %.10g, oracle %.10g", h.b.Name(), what, got, want)
	}
}

// side picks one backend's buffer out of a pair.
type side func(pair) backend.Buffer

// do runs op on the backend under test and then on the oracle, each with
// its own buffers, and returns op's two results (for the operations that
// return one).
func (h *harness) do(op func(be backend.Backend, x side) float64) (got, want float64) {
	got = op(h.b, func(p pair) backend.Buffer { return p.got })
	want = op(h.o, func(p pair) backend.Buffer { return p.want })
	return got, want
}
