package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// threadCounts are the backends each test runs on: one thread exercises
// the inline path, three an uneven split of the work.
var threadCounts = []int{1, 3}

// newTestBackend returns a backend with the given thread count that, with
// more than one thread, splits even the smallest operation, so the
// parallel paths run on test-sized problems.
func newTestBackend(threads int) *Backend {
	c := NewWithThreads(threads)
	c.splitAll = threads > 1
	return c
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// randn returns n normally distributed values times scale.
func randn(r *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * scale)
	}
	return out
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// upload returns an F32 buffer of the given shape holding vals.
func upload(t *testing.T, c *Backend, vals []float32, shape ...int) backend.Buffer {
	t.Helper()
	b := c.Zeros(shape...)
	if err := c.Write(b, 0, vals); err != nil {
		t.Fatal(err)
	}
	return b
}

// uploadAs encodes vals as dtype dt and loads them; it also returns the
// values the stored encoding decodes to, which is what the backend sees.
func uploadAs(t *testing.T, c *Backend, dt tensor.DType, vals []float32, shape ...int) (backend.Buffer, []float32) {
	t.Helper()
	n, err := dt.Bytes(int64(len(vals)))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, n)
	if err := tensor.Encode(dt, vals, data); err != nil {
		t.Fatal(err)
	}
	tt, err := tensor.New("w", dt, tensor.Shape(shape), data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Load(tt)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := tt.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return b, dec
}

// download reads a whole buffer.
func download(t *testing.T, c *Backend, b backend.Buffer) []float32 {
	t.Helper()
	out := make([]float32, b.Shape().Numel())
	if err := c.Read(b, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertClose fails unless |got[i]-want[i]| <= atol + rtol*|want[i]| for
// every i, reporting the first few offenders.
func assertClose(t *testing.T, what string, got []float32, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		if !(d <= atol+rtol*math.Abs(want[i])) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.8g, want %.8g (diff %.3g)", what, i, got[i], want[i], d)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance (rtol %g, atol %g)", what, bad, len(got), rtol, atol)
	}
}

// maxAbs returns the largest magnitude in x (at least tiny, so it can
// scale a tolerance).
func maxAbs(x []float64) float64 {
	m := 1e-30
	for _, v := range x {
		m = max(m, math.Abs(v))
	}
	return m
}

// mustPanic fails unless f panics with a message containing want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one mentioning %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q does not mention %q", msg, want)
		}
	}()
	f()
}

// numGrad returns the central finite-difference gradient of f at x in
// float64 (x is restored afterwards).
func numGrad(f func(x []float64) float64, x []float64) []float64 {
	const h = 1e-5
	g := make([]float64, len(x))
	for i := range x {
		v := x[i]
		x[i] = v + h
		up := f(x)
		x[i] = v - h
		down := f(x)
		x[i] = v
		g[i] = (up - down) / (2 * h)
	}
	return g
}

// weighted returns sum(dy * y): the scalar loss whose gradient with
// respect to y is dy, used to turn an operation into a function for
// numGrad.
func weighted(dy []float32, y []float64) float64 {
	var s float64
	for i, v := range y {
		s += float64(dy[i]) * v
	}
	return s
}
