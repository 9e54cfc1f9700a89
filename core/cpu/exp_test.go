package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpShift checks the exp kernels (portable and, where built, SIMD)
// against math.Exp over the range softmax uses, on lengths that leave
// every remainder, and that NaN propagates.
func TestExpShift(t *testing.T) {
	kernels := map[string]func([]float32, float32) float32{"go": expShiftGo, "active": expShift}
	r := rand.New(rand.NewPCG(1, 2))
	for name, f := range kernels {
		for _, n := range []int{1, 7, 8, 9, 31, 256, 1001} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.Float64()*120 - 100) // [-100, 20)
			}
			const m = 20
			want := make([]float64, n)
			var wantSum float64
			for i, v := range x {
				want[i] = math.Exp(max(float64(v-m), -87)) // v-m rounds to float32 first, as in the kernels
				wantSum += want[i]
			}
			got := append([]float32(nil), x...)
			sum := f(got, m)
			for i := range got {
				if d := math.Abs(float64(got[i]) - want[i]); d > 4e-7*want[i] {
					t.Fatalf("%s n=%d: exp(%v - %v) = %v, want %v", name, n, x[i], m, got[i], want[i])
				}
			}
			if d := math.Abs(float64(sum) - wantSum); d > 1e-5*wantSum {
				t.Fatalf("%s n=%d: sum %v, want %v", name, n, sum, wantSum)
			}
		}
		x := []float32{0, float32(math.NaN()), -1, 0, 0, 0, 0, 0, 0}
		if f(x, 0); !math.IsNaN(float64(x[1])) || x[0] != 1 {
			t.Fatalf("%s: NaN input gave %v", name, x)
		}
		if f(x[:1], float32(math.NaN())); !math.IsNaN(float64(x[0])) {
			t.Fatalf("%s: NaN shift gave %v", name, x[0])
		}
	}
}

func BenchmarkExpShift(b *testing.B) {
	x := make([]float32, 4096)
	for name, f := range map[string]func([]float32, float32) float32{"go": expShiftGo, "active": expShift, "math.Exp": expShiftMath} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				f(x, 0)
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gexp/s")
		})
	}
}

// expShiftMath is expShift with math.Exp: what the kernels replace.
func expShiftMath(x []float32, m float32) float32 {
	var s float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		s += e
	}
	return float32(s)
}

// TestSigmoids checks the vector sigmoid against the float64 one, out to
// where exp overflows float32 and with NaN.
func TestSigmoids(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 8, 13, 300} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.Float64()*240 - 120)
		}
		x[0] = -100 // exp(100) overflows float32: capped at exp(88)
		got := make([]float32, n)
		sigmoids(got, x)
		for i, v := range x {
			want := 1 / (1 + math.Exp(-float64(v)))
			if d := math.Abs(float64(got[i]) - want); d > 4e-7*want && d > 1e-37 {
				t.Fatalf("n=%d: sigmoid(%v) = %v, want %v", n, v, got[i], want)
			}
		}
	}
	x := []float32{0, 1, 2, 3, 4, 5, 6, float32(math.NaN()), 8}
	got := make([]float32, len(x))
	if sigmoids(got, x); !math.IsNaN(float64(got[7])) || got[0] != 0.5 {
		t.Fatalf("sigmoids(%v) = %v", x, got)
	}
}
