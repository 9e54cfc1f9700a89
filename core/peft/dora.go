package peft

import (
	"math"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// DoRA (weight-decomposed low-rank adaptation, Liu et al. 2024) as PEFT's
// DoraLinearLayer computes it. Each adapted layer has a trainable magnitude
// m [out], initialised to the row norms of W + s·B·A, and
//
//	y = x Wᵀ + bias + (f − 1) ⊙ x' Wᵀ + f ⊙ s·(x' Aᵀ) Bᵀ,   f = m / ‖W + s·B·A‖_row
//
// where x' = x, or dropout(x) while training with dropout (PEFT then
// recomputes the base product from the dropped input; without dropout it
// reuses the base output, minus the bias). As in the paper (§4.3) and PEFT,
// the norm is detached: it is a constant in backward, so
//
//	dm += Σ_rows dy ⊙ (x' Wᵀ + s·x' Aᵀ Bᵀ) / ‖·‖
//	dB, dA, dx: those of LoRA with dy replaced by f ⊙ dy,
//	           plus dx += ((f − 1) ⊙ dy) W through the base term.
//
// With several active adapters PEFT feeds a DoRA adapter the running
// output (base plus the adapters before it); graft uses the base output,
// which is the same when the DoRA adapter comes first or alone.
//
// The row norms are recomputed on every forward with backend operations
// only, without a host round trip: W is gathered a tile of rows at a time
// with Embedding (which dequantizes any dtype), s·B·A is added by a
// MatMul into the tile, and the norm of each row comes from RMSNorm:
// Σ_k v_k · (v_k / rms(v)) = √in · ‖v‖. This costs out·in·r multiply-adds
// per forward, the same as the expansion ‖W‖² + 2s·rowdot(W, BA) + s²‖BA‖²
// (whose rowdot needs A·Wᵀ), but never cancels catastrophically and needs
// no square root op: the op set has none, and 1/‖·‖ is again read off
// RMSNorm, of the two-column rows [‖·‖, κ]: κ / rms = κ√2 / ‖·‖ for κ far
// below any row norm.

// doraKappa is the second column of the rows whose RMSNorm yields 1/‖·‖:
// κ² = 2⁻¹²⁰ vanishes next to any real squared row norm yet stays a normal
// float32.
const doraKappa = 0x1p-60

// doraTileElems bounds the tile of W + s·B·A materialised at once.
const doraTileElems = 1 << 16

// doraState is the magnitude of one DoRA adapter on one layer, with the
// per-forward norm values and scratch.
type doraState struct {
	m, dm backend.Buffer // [out]: the magnitude and its gradient

	// From the last norm computation (detached constants).
	invn backend.Buffer // [out]: 1 / ‖W + s·B·A‖_row
	f    backend.Buffer // [out]: m ⊙ invn

	// Scratch of the norm computation.
	tile   int
	vt, vn backend.Buffer // [tile, in]
	sel    backend.Buffer // [in, 2]: column 0 is 1/√in, column 1 zero
	kz     backend.Buffer // [out, 2]: rows [0, κ]
	z      backend.Buffer // [out, 2]
	e      backend.Buffer // [4] = [1 0 0 1]: columns e0, e1 as views [2, 1]
	ids    []int32

	// Views made once, when the state is built, so that a training step
	// makes none: tiles are the row tiles of the norm computation, e1 is
	// the column e1 of e, invnCol and fCol are invn and f as columns
	// [out, 1], and dmRow is dm as a row [1, out].
	tiles                    []doraTile
	e1, invnCol, fCol, dmRow backend.Buffer

	// Per-pass scratch for rows input rows.
	rows int
	t, u backend.Buffer // [rows, out]: t = x' Wᵀ + s·x' Aᵀ Bᵀ; u scratch
	ones backend.Buffer // [1, rows]
}

// doraTile is one tile of rows [o0, o0+k) of the norm computation: the
// leading k rows of the scratch vt and vn, and the rows of B and z.
type doraTile struct {
	o0, k                int
	vt, vn, bRows, zRows backend.Buffer
}

// newDoRA allocates the magnitude of a DoRA adapter whose A and B are
// already on the backend: mag, or when nil the row norms of weight + s·B·A,
// where weight is the base weight the layer will have.
func (w *loraWeights) newDoRA(b backend.Backend, lin *model.Linear, weight backend.Buffer, mag []float32) error {
	in, out := lin.In, lin.Out
	d := &doraState{tile: max(1, min(out, doraTileElems/max(in, 1)))}
	w.dora = d
	d.dm = b.Zeros(out)
	d.invn = b.Zeros(out)
	d.f = b.Zeros(out)
	d.vt = b.Zeros(d.tile, in)
	d.vn = b.Zeros(d.tile, in)
	d.z = b.Zeros(out, 2)
	d.ids = make([]int32, d.tile)
	var err error
	sel := make([]float32, in*2)
	for k := range in {
		sel[2*k] = float32(1 / math.Sqrt(float64(in)))
	}
	if d.sel, err = upload(b, sel, in, 2); err != nil {
		return err
	}
	kz := make([]float32, out*2)
	for o := range out {
		kz[2*o+1] = doraKappa
	}
	if d.kz, err = upload(b, kz, out, 2); err != nil {
		return err
	}
	if d.e, err = upload(b, []float32{1, 0, 0, 1}, 4); err != nil {
		return err
	}
	d.views(b, w.B, in, out, w.r)
	if mag != nil {
		d.m, err = upload(b, mag, out)
		return err
	}
	// m = ‖W + s·B·A‖_row: column 0 of z after the row sums.
	d.m = b.Zeros(out)
	w.doraRowNorms(b, weight)
	mcol := b.View(d.m, 0, out, 1)
	e0 := b.View(d.e, 0, 2, 1)
	b.MatMul(mcol, d.z, e0, backend.MatMul{})
	b.Free(mcol)
	b.Free(e0)
	return nil
}

// views makes the views the per-pass computations use, over the state's
// buffers and B [out, r].
func (d *doraState) views(b backend.Backend, bw backend.Buffer, in, out, r int) {
	for o0 := 0; o0 < out; o0 += d.tile {
		k := min(d.tile, out-o0)
		d.tiles = append(d.tiles, doraTile{
			o0: o0, k: k,
			vt: b.View(d.vt, 0, k, in), vn: b.View(d.vn, 0, k, in),
			bRows: b.View(bw, o0*r, k, r), zRows: b.View(d.z, 2*o0, k, 2),
		})
	}
	d.e1 = b.View(d.e, 2, 2, 1)
	d.invnCol = b.View(d.invn, 0, out, 1)
	d.fCol = b.View(d.f, 0, out, 1)
	d.dmRow = b.View(d.dm, 0, 1, out)
}

// freeViews releases what views made.
func (d *doraState) freeViews(b backend.Backend) {
	for _, t := range d.tiles {
		b.Free(t.vt)
		b.Free(t.vn)
		b.Free(t.bRows)
		b.Free(t.zRows)
	}
	d.tiles = nil
	for _, v := range [...]backend.Buffer{d.e1, d.invnCol, d.fCol, d.dmRow} {
		if v != nil {
			b.Free(v)
		}
	}
	d.e1, d.invnCol, d.fCol, d.dmRow = nil, nil, nil, nil
}

// doraRowNorms leaves z = [‖W + s·B·A‖_row, κ] for the base weight W.
func (w *loraWeights) doraRowNorms(b backend.Backend, weight backend.Buffer) {
	d := w.dora
	b.Copy(d.z, d.kz)
	for _, t := range d.tiles {
		for i := range t.k {
			d.ids[i] = int32(t.o0 + i)
		}
		b.Embedding(t.vt, weight, d.ids[:t.k])
		b.MatMul(t.vt, t.bRows, w.A, backend.MatMul{Accumulate: true, Alpha: float32(w.scaling)})
		// vn = v/rms(v); Σ v ⊙ vn / √in = ‖v‖. The tiny eps keeps a zero
		// row at norm 0 instead of 0/0.
		b.RMSNorm(t.vn, t.vt, nil, 1e-30)
		b.Mul(t.vn, t.vn, t.vt)
		b.MatMul(t.zRows, t.vn, d.sel, backend.MatMul{Accumulate: true})
	}
}

// doraFactors recomputes invn = 1/‖W + s·B·A‖_row and f = m ⊙ invn for
// the layer's current base weight.
func (w *loraWeights) doraFactors(b backend.Backend) {
	d := w.dora
	w.doraRowNorms(b, w.layer.lin.Weight)
	// Row [n, κ] / rms = [·, κ√2/n] (κ² ≪ n²).
	b.RMSNorm(d.z, d.z, nil, 0)
	b.MatMul(d.invnCol, d.z, d.e1, backend.MatMul{Alpha: float32(1 / (doraKappa * math.Sqrt2))})
	b.Mul(d.f, d.m, d.invn)
}

func (d *doraState) ensureRows(b backend.Backend, rows, out int) error {
	if d.t != nil && d.rows == rows {
		return nil
	}
	d.freeRows(b)
	d.rows = rows
	d.t = b.Zeros(rows, out)
	d.u = b.Zeros(rows, out)
	ones := make([]float32, rows)
	for i := range ones {
		ones[i] = 1
	}
	var err error
	d.ones, err = upload(b, ones, 1, rows)
	return err
}

func (d *doraState) freeRows(b backend.Backend) {
	for _, buf := range []backend.Buffer{d.t, d.u, d.ones} {
		if buf != nil {
			b.Free(buf)
		}
	}
	d.t, d.u, d.ones, d.rows = nil, nil, nil, 0
}

func (d *doraState) free(b backend.Backend) {
	d.freeRows(b)
	d.freeViews(b)
	for _, buf := range []backend.Buffer{d.m, d.dm, d.invn, d.f, d.vt, d.vn, d.sel, d.kz, d.z, d.e} {
		if buf != nil {
			b.Free(buf)
		}
	}
	*d = doraState{}
}

// doraForward adds the DoRA term to dst. base is x Wᵀ without the bias
// (the layer's base output), used when no dropout applies.
func (w *loraWeights) doraForward(b backend.Backend, dst, x, base backend.Buffer, rows int, training bool, rng *rand.Rand) {
	lin := w.layer.lin
	d := w.dora
	src := w.prepareInput(b, x, rows, training, rng)
	if err := d.ensureRows(b, rows, lin.Out); err != nil {
		panic("peft: DoRA scratch: " + err.Error()) // our own F32 buffer: a backend bug
	}
	w.doraFactors(b)
	if w.dropped {
		b.MatMul(d.t, src, lin.Weight, backend.MatMul{TransB: true})
	} else {
		b.Copy(d.t, base)
	}
	// dst += f ⊙ t − x'Wᵀ with t = x'Wᵀ + s·(x'Aᵀ)Bᵀ.
	b.AddScaled(dst, d.t, -1)
	b.MatMul(w.ax, src, w.A, backend.MatMul{TransB: true})
	b.MatMul(d.t, w.ax, w.B, backend.MatMul{TransB: true, Accumulate: true, Alpha: float32(w.scaling)})
	b.Mul(d.u, d.t, d.f)
	b.Add(dst, dst, d.u)
}

// doraBackward accumulates dm, dA and dB and adds the input gradient of the
// DoRA term (the base's own term is added by the layer).
func (w *loraWeights) doraBackward(b backend.Backend, dx, dy, x backend.Buffer) {
	lin := w.layer.lin
	d := w.dora
	src := x
	if w.dropped {
		src = w.xd
	}
	// dm += onesᵀ (dy ⊙ t ⊙ invn).
	b.Mul(d.u, dy, d.t)
	b.Mul(d.u, d.u, d.invn)
	b.MatMul(d.dmRow, d.ones, d.u, backend.MatMul{Accumulate: true})
	// The LoRA path sees g = f ⊙ dy.
	s := float32(w.scaling)
	b.Mul(d.u, dy, d.f)
	b.MatMul(w.dB, d.u, w.ax, backend.MatMul{TransA: true, Accumulate: true, Alpha: s})
	b.MatMul(w.gax, d.u, w.B, backend.MatMul{Alpha: s})
	b.MatMul(w.dA, w.gax, src, backend.MatMul{TransA: true, Accumulate: true})
	if dx == nil {
		return
	}
	// dx += ((f − 1) ⊙ dy) W + gax A, through the dropout mask if any.
	b.AddScaled(d.u, dy, -1)
	if !w.dropped {
		b.MatMul(dx, d.u, lin.Weight, backend.MatMul{Accumulate: true})
		b.MatMul(dx, w.gax, w.A, backend.MatMul{Accumulate: true})
		return
	}
	b.MatMul(w.dxd, d.u, lin.Weight, backend.MatMul{})
	b.MatMul(w.dxd, w.gax, w.A, backend.MatMul{Accumulate: true})
	b.Mul(w.dxd, w.dxd, w.mask)
	b.Add(dx, dx, w.dxd)
}

// doraMerge replaces the layer's weight (an F32 buffer the manager owns)
// by f ⊙ (W + s·B·A), PEFT's merge, with f from the weight before the
// merge.
func (w *loraWeights) doraMerge(b backend.Backend) {
	lin := w.layer.lin
	w.doraFactors(b)
	b.MatMul(lin.Weight, w.B, w.A, backend.MatMul{Accumulate: true, Alpha: float32(w.scaling)})
	b.Mul(lin.Weight, lin.Weight, w.dora.fCol)
}

// magnitudeName is PEFT's saved key of a DoRA magnitude (PEFT ≥ 0.12 drops
// the ".weight" of its DoraLinearLayer): base_model.model.<module>.lora_magnitude_vector.
func magnitudeName(module string) string {
	return "base_model.model." + module + ".lora_magnitude_vector"
}
