package peft

import (
	"fmt"
	"math"
	"testing"
)

func randMatrix(seed uint64, m, n int) []float64 {
	rng := seeded(seed)
	out := make([]float64, m*n)
	for i := range out {
		out[i] = rng.NormFloat64()
	}
	return out
}

// maxAbsDiff returns max|a−b|.
func maxAbsDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// checkOrthonormalColumns fails unless the m×k matrix q has orthonormal
// columns.
func checkOrthonormalColumns(t *testing.T, what string, q []float64, m, k int) {
	t.Helper()
	g := matMul(transpose(q, m, k), q, k, m, k)
	for i := range k {
		for j := range k {
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(g[i*k+j]-want) > 1e-12 {
				t.Fatalf("%s: columns %d and %d have dot product %g, want %g", what, i, j, g[i*k+j], want)
			}
		}
	}
}

func TestQRHouseholder(t *testing.T) {
	for _, dims := range [][2]int{{7, 4}, {4, 7}, {5, 5}, {1, 3}, {3, 1}} {
		m, n := dims[0], dims[1]
		t.Run(fmt.Sprintf("%dx%d", m, n), func(t *testing.T) {
			a := randMatrix(uint64(m*10+n), m, n)
			q, r := qrHouseholder(a, m, n)
			k := min(m, n)
			checkOrthonormalColumns(t, "q", q, m, k)
			for i := range k {
				for j := range min(i, n) {
					if r[i*n+j] != 0 {
						t.Fatalf("r[%d][%d] = %g below the diagonal", i, j, r[i*n+j])
					}
				}
			}
			if d := maxAbsDiff(matMul(q, r, m, k, n), a); d > 1e-12 {
				t.Errorf("|q·r − a| = %g", d)
			}
			// LAPACK's sign convention: r₀₀ = −sign(a₀₀)·‖a[:, 0]‖ when the
			// column has more than one non-zero.
			if m > 1 {
				var norm float64
				for i := range m {
					norm = math.Hypot(norm, a[i*n])
				}
				if want := -math.Copysign(norm, a[0]); math.Abs(r[0]-want) > 1e-12 {
					t.Errorf("r[0][0] = %g, want %g", r[0], want)
				}
			}
		})
	}
}

// knownSpectrum builds u·diag(s)·vt with random orthonormal u and v.
func knownSpectrum(seed uint64, m, n int, s []float64) []float64 {
	u, _ := qrHouseholder(randMatrix(seed, m, len(s)), m, len(s))
	v, _ := qrHouseholder(randMatrix(seed+1, n, len(s)), n, len(s))
	k := len(s)
	us := make([]float64, m*k)
	for i := range m {
		for j := range k {
			us[i*k+j] = u[i*k+j] * s[j]
		}
	}
	return matMul(us, transpose(v, n, k), m, k, n)
}

func checkSVD(t *testing.T, a, u, s, vt []float64, m, n int) {
	t.Helper()
	k := len(s)
	for i := 1; i < k; i++ {
		if s[i] > s[i-1] {
			t.Fatalf("singular values not descending: %v", s)
		}
	}
	us := make([]float64, m*k)
	for i := range m {
		for j := range k {
			us[i*k+j] = u[i*k+j] * s[j]
		}
	}
	if d := maxAbsDiff(matMul(us, vt, m, k, n), a); d > 1e-10 {
		t.Errorf("|u·s·vt − a| = %g", d)
	}
}

func TestSVDJacobi(t *testing.T) {
	want := []float64{9, 4, 2.5, 1, 0.25}
	for _, dims := range [][2]int{{9, 5}, {5, 9}, {5, 5}} {
		m, n := dims[0], dims[1]
		t.Run(fmt.Sprintf("%dx%d", m, n), func(t *testing.T) {
			a := knownSpectrum(3, m, n, want)
			u, s, vt := svdJacobi(a, m, n)
			checkSVD(t, a, u, s, vt, m, n)
			for i, w := range want {
				if math.Abs(s[i]-w) > 1e-12 {
					t.Errorf("s[%d] = %g, want %g", i, s[i], w)
				}
			}
			checkOrthonormalColumns(t, "u", u, m, len(s))
			checkOrthonormalColumns(t, "v", transpose(vt, len(s), n), n, len(s))
		})
	}
	t.Run("rank deficient", func(t *testing.T) {
		a := knownSpectrum(5, 8, 6, []float64{3, 1})
		u, s, vt := svdJacobi(a, 8, 6)
		checkSVD(t, a, u, s, vt, 8, 6)
		if s[2] > 1e-12 || math.Abs(s[0]-3) > 1e-12 || math.Abs(s[1]-1) > 1e-12 {
			t.Errorf("singular values %v, want 3, 1, 0…", s)
		}
	})
}

func TestSVDLowRank(t *testing.T) {
	// A matrix of rank 3 is recovered exactly by a sketch of size 3.
	want := []float64{5, 2, 0.5}
	a := knownSpectrum(7, 12, 9, want)
	for _, niter := range []int{0, 2} {
		u, s, vt := svdLowRank(a, 12, 9, 3, niter, seeded(1))
		checkSVD(t, a, u, s, vt, 12, 9)
		for i, w := range want {
			if math.Abs(s[i]-w) > 1e-10 {
				t.Errorf("niter %d: s[%d] = %g, want %g", niter, i, s[i], w)
			}
		}
	}
	// On a full-rank matrix with a gap in its spectrum, subspace iterations
	// close in on the leading singular values.
	b := knownSpectrum(8, 20, 15, []float64{10, 8, 6, 0.3, 0.2, 0.1, 0.05})
	_, s0, _ := svdLowRank(b, 20, 15, 3, 0, seeded(2))
	_, s4, _ := svdLowRank(b, 20, 15, 3, 4, seeded(2))
	err0, err4 := math.Abs(s0[2]-6), math.Abs(s4[2]-6)
	if err4 > 1e-6 || err4 > err0 {
		t.Errorf("third singular value: %g with no iteration, %g with 4; want 6", s0[2], s4[2])
	}
}

func TestSVDProduct(t *testing.T) {
	for _, dims := range [][3]int{{10, 3, 8}, {4, 6, 5}} {
		m, k, n := dims[0], dims[1], dims[2]
		b, a := randMatrix(11, m, k), randMatrix(12, k, n)
		full := matMul(b, a, m, k, n)
		u, s, vt := svdProduct(b, a, m, k, n)
		checkSVD(t, full, u, s, vt, m, n)
		_, sRef, _ := svdJacobi(full, m, n)
		for i := range s {
			if math.Abs(s[i]-sRef[i]) > 1e-10 {
				t.Errorf("%v: s[%d] = %g, full SVD says %g", dims, i, s[i], sRef[i])
			}
		}
	}
}
