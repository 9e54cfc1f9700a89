package peft

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Dense float64 linear algebra for the initialisations and combinations
// that need a decomposition of a weight (PiSSA's SVD, OLoRA's QR, the "svd"
// combination of adapters). Matrices are row-major []float64 with their
// dimensions passed alongside. These run once per layer on the host, in
// float64, so that the decompositions are as exact as PyTorch's LAPACK
// calls that PEFT makes.

// qrHouseholder returns the reduced QR decomposition a = q·r of the m×n
// matrix a: q is m×k with orthonormal columns, r is k×n upper triangular,
// k = min(m, n). The reflectors follow LAPACK's dgeqrf (dlarfg), so the
// signs of r's diagonal, and with them the columns of q, are the ones
// torch.linalg.qr returns: r[j][j] = -sign(a_jj)·‖a[j:, j]‖.
func qrHouseholder(a []float64, m, n int) (q, r []float64) {
	k := min(m, n)
	w := slices.Clone(a)
	taus := make([]float64, k)
	// Column j's reflector is stored below the diagonal of w, with an
	// implicit 1 on the diagonal, as LAPACK stores it.
	for j := range k {
		alpha := w[j*n+j]
		var xnorm float64
		for i := j + 1; i < m; i++ {
			xnorm = math.Hypot(xnorm, w[i*n+j])
		}
		if xnorm == 0 {
			continue // H = I; r[j][j] keeps alpha's sign
		}
		beta := -math.Copysign(math.Hypot(alpha, xnorm), alpha)
		taus[j] = (beta - alpha) / beta
		scale := 1 / (alpha - beta)
		for i := j + 1; i < m; i++ {
			w[i*n+j] *= scale
		}
		w[j*n+j] = beta
		// Apply H = I - tau·v·vᵀ to the remaining columns.
		for c := j + 1; c < n; c++ {
			dot := w[j*n+c]
			for i := j + 1; i < m; i++ {
				dot += w[i*n+j] * w[i*n+c]
			}
			dot *= taus[j]
			w[j*n+c] -= dot
			for i := j + 1; i < m; i++ {
				w[i*n+c] -= dot * w[i*n+j]
			}
		}
	}
	r = make([]float64, k*n)
	for i := range k {
		copy(r[i*n+i:(i+1)*n], w[i*n+i:(i+1)*n])
	}
	// q = H_0 H_1 … H_{k-1} applied to the first k columns of I, built
	// from the last reflector backwards.
	q = make([]float64, m*k)
	for i := range k {
		q[i*k+i] = 1
	}
	for j := k - 1; j >= 0; j-- {
		if taus[j] == 0 {
			continue
		}
		for c := j; c < k; c++ {
			dot := q[j*k+c]
			for i := j + 1; i < m; i++ {
				dot += w[i*n+j] * q[i*k+c]
			}
			dot *= taus[j]
			q[j*k+c] -= dot
			for i := j + 1; i < m; i++ {
				q[i*k+c] -= dot * w[i*n+j]
			}
		}
	}
	return q, r
}

// svdJacobi returns the thin singular value decomposition a = u·diag(s)·vt
// of the m×n matrix a by one-sided (Hestenes) Jacobi rotations: u is m×k,
// s has k values in descending order, vt is k×n, k = min(m, n). Singular
// vectors of a zero singular value are zero.
//
// One-sided Jacobi is accurate to about machine precision relative to each
// singular value and needs no bidiagonalisation; it costs
// O(sweeps·min(m,n)²·max(m,n)), fine for one decomposition per layer.
func svdJacobi(a []float64, m, n int) (u, s, vt []float64) {
	if m < n {
		// a = u s vt  ⇔  aᵀ = vtᵀ s uᵀ.
		v2, s2, ut2 := svdJacobi(transpose(a, m, n), n, m)
		return transpose(ut2, m, m), s2, transpose(v2, n, m)[:m*n]
	}
	// Columns of a, stored contiguously, are rotated until orthogonal; the
	// same rotations applied to the identity give v.
	cols := transpose(a, m, n) // n columns of length m
	v := make([]float64, n*n)  // column j of v at v[j*n:]
	for j := range n {
		v[j*n+j] = 1
	}
	const eps = 1e-15
	for sweep := 0; sweep < 80; sweep++ {
		rotated := false
		for i := 0; i < n-1; i++ {
			ci := cols[i*m : (i+1)*m]
			for j := i + 1; j < n; j++ {
				cj := cols[j*m : (j+1)*m]
				var alpha, beta, gamma float64
				for k := range m {
					alpha += ci[k] * ci[k]
					beta += cj[k] * cj[k]
					gamma += ci[k] * cj[k]
				}
				if gamma == 0 || math.Abs(gamma) <= eps*math.Sqrt(alpha*beta) {
					continue
				}
				rotated = true
				zeta := (beta - alpha) / (2 * gamma)
				t := math.Copysign(1, zeta) / (math.Abs(zeta) + math.Sqrt(1+zeta*zeta))
				c := 1 / math.Sqrt(1+t*t)
				sn := c * t
				rotate(ci, cj, c, sn)
				rotate(v[i*n:(i+1)*n], v[j*n:(j+1)*n], c, sn)
			}
		}
		if !rotated {
			break
		}
	}
	s = make([]float64, n)
	for j := range n {
		s[j] = math.Sqrt(dot64(cols[j*m:(j+1)*m], cols[j*m:(j+1)*m]))
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		switch {
		case s[x] > s[y]:
			return -1
		case s[x] < s[y]:
			return 1
		}
		return 0
	})
	u = make([]float64, m*n)
	vt = make([]float64, n*n)
	sorted := make([]float64, n)
	for out, j := range order {
		sorted[out] = s[j]
		if s[j] > 0 {
			for k := range m {
				u[k*n+out] = cols[j*m+k] / s[j]
			}
			copy(vt[out*n:(out+1)*n], v[j*n:(j+1)*n])
		}
	}
	return u, sorted, vt
}

// rotate applies the plane rotation [c -s; s c] to the pair (x, y):
// x' = c·x − s·y, y' = s·x + c·y.
func rotate(x, y []float64, c, s float64) {
	for k := range x {
		xk, yk := x[k], y[k]
		x[k] = c*xk - s*yk
		y[k] = s*xk + c*yk
	}
}

// svdLowRank approximates the q leading singular triplets of the m×n matrix
// a by randomized subspace iteration, as torch.svd_lowrank (Halko, Martinsson
// and Tropp 2009, algorithms 4.4 and 5.1) does: a Gaussian sketch of the
// range, niter power iterations re-orthonormalised by QR each half step,
// then an exact SVD of the projected q×n matrix. u is m×q, s has q values,
// vt is q×n.
func svdLowRank(a []float64, m, n, q, niter int, rng *rand.Rand) (u, s, vt []float64) {
	q = min(q, m, n)
	omega := make([]float64, n*q)
	for i := range omega {
		omega[i] = rng.NormFloat64()
	}
	at := transpose(a, m, n)
	basis, _ := qrHouseholder(matMul(a, omega, m, n, q), m, q)
	for range niter {
		z, _ := qrHouseholder(matMul(at, basis, n, m, q), n, q)
		basis, _ = qrHouseholder(matMul(a, z, m, n, q), m, q)
	}
	// b = basisᵀ·a is q×n; a ≈ basis·b.
	b := matMul(transpose(basis, m, q), a, q, m, n)
	ub, s, vt := svdJacobi(b, q, n)
	return matMul(basis, ub, m, q, q), s, vt
}

// svdProduct returns the thin SVD of the m×n product b·a of an m×k and a
// k×n matrix without forming it: with b = qb·rb and aᵀ = qa·ra, b·a =
// qb·(rb·raᵀ)·qaᵀ, and only the small core rb·raᵀ needs an SVD. The result
// has min(m, n, k) singular triplets, enough for a product of rank ≤ k.
func svdProduct(b, a []float64, m, k, n int) (u, s, vt []float64) {
	if k > m || k > n {
		return svdJacobi(matMul(b, a, m, k, n), m, n)
	}
	qb, rb := qrHouseholder(b, m, k)                  // m×k, k×k
	qa, ra := qrHouseholder(transpose(a, k, n), n, k) // n×k, k×k
	core := matMul(rb, transpose(ra, k, k), k, k, k)
	uc, s, vtc := svdJacobi(core, k, k)
	return matMul(qb, uc, m, k, k), s, matMul(vtc, transpose(qa, n, k), k, k, n)
}

// matMul returns the m×n product of the m×k matrix x and the k×n matrix y.
func matMul(x, y []float64, m, k, n int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		row := out[i*n : (i+1)*n]
		for p := range k {
			xv := x[i*k+p]
			if xv == 0 {
				continue
			}
			for j, yv := range y[p*n : (p+1)*n] {
				row[j] += xv * yv
			}
		}
	}
	return out
}

// transpose returns the n×m transpose of the m×n matrix x.
func transpose(x []float64, m, n int) []float64 {
	out := make([]float64, m*n)
	for i := range m {
		for j := range n {
			out[j*m+i] = x[i*n+j]
		}
	}
	return out
}

func dot64(x, y []float64) float64 {
	var s float64
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

func toFloat64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
