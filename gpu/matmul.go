package gpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// MatMul computes dst (+)= alpha * op(a) * op(b) in one register-tiled
// kernel (matmul_tiled.wgsl) whose tile the shape picks (see tileFor); b of
// any loaded dtype is dequantized as its tiles are loaded, never whole.
// Shapes come from the buffers seen as matrices. Mismatched shapes and a
// dst overlapping a or b panic.
func (g *Backend) MatMul(dst, a, b backend.Buffer, f backend.MatMul) {
	g.matMul(dst, a, b, f, false)
}

// matMul is MatMul; simple runs the first kernel, matmul.wgsl (64 x 64
// tiles, scalar loads, 4 x 4 outputs an invocation), which the
// benchmarks compare against.
func (g *Backend) matMul(dst, a, b backend.Buffer, f backend.MatMul, simple bool) {
	const op = "MatMul"
	d, x, w := g.f32(dst, op, "dst"), g.f32(a, op, "a"), g.buf(b, op, "b")
	ar, ac := x.dims()
	br, bc := w.dims()
	m, k := ar, ac
	if f.TransA {
		m, k = ac, ar
	}
	kb, n := br, bc
	if f.TransB {
		kb, n = bc, br
	}
	if dr, dc := d.dims(); k != kb || dr != m || dc != n {
		panic(fmt.Sprintf("gpu: MatMul: dst %v = op(a %v) * op(b %v) with TransA=%v TransB=%v: shapes do not fit",
			d.shape, x.shape, w.shape, f.TransA, f.TransB))
	}
	if overlaps(d, x) || (w.dtype == tensor.F32 && overlaps(d, w)) {
		panic("gpu: MatMul: dst must not overlap a or b")
	}
	alpha := f.Alpha
	if alpha == 0 {
		alpha = 1
	}
	if m == 0 || n == 0 {
		return
	}
	// A pending Scale of dst (pending.go) is void when the product
	// overwrites dst, and a pending zeroing makes an accumulating product
	// an overwriting one.
	if _, ok := g.takePending(d, func(p pendingScale) bool { return !f.Accumulate || (p.mul == nil && p.rope == nil && p.c == 0) }); ok {
		f.Accumulate = false
	}
	if k == 0 {
		if !f.Accumulate {
			g.fill(d, 0)
		}
		return
	}
	// Each operand splits along its own rows: dst and a (unless
	// transposed) along M, a transposed and b along K, b transposed along
	// N. One dispatch per block of M, N and K ranges; the K blocks after
	// the first accumulate.
	_, ldd := d.dims()
	var aM, aK, bK, bN *buffer
	if f.TransA {
		aK = x
	} else {
		aM = x
	}
	if f.TransB {
		bN = w
	} else {
		bK = w
	}
	mSpans := spans(op, m, operand{"dst", d, n}, operand{"a", aM, k})
	kSpans := spans(op, k, operand{"a", aK, m}, operand{"b", bK, n})
	nSpans := spans(op, n, operand{"b", bN, k})
	for _, ms := range mSpans {
		for _, ns := range nSpans {
			for ki, ks := range kSpans {
				ab, aoff := ms.bufs[1], ms.offs[1]+ks.start
				if f.TransA {
					ab, aoff = ks.bufs[0], ks.offs[0]+ms.start
				}
				wb, woff := ks.bufs[1], ks.offs[1]+ns.start
				if f.TransB {
					wb, woff = ns.bufs[0], ns.offs[0]+ks.start
				}
				acc := f.Accumulate || ki > 0
				a32 := args{}.u(ms.n, ns.n, ks.n, ms.offs[0]+ns.start, aoff, woff, bit(f.TransA), bit(f.TransB), bit(acc)).f(alpha).u(ldd, ac, bc)
				if simple {
					tiles := groupsFor(ms.n, 64) * groupsFor(ns.n, 64)
					g.run(kMatMul.withWeight(w.dtype), tiles, a32, ms.bufs[0], ab, wb)
					continue
				}
				t := g.tileFor(ms.n, ns.n)
				// Vector loads need each stored row of an operand to start
				// at a multiple of 4 elements and the run it loads along
				// (K, or M/N for a transposed operand) to be one too.
				aRun, bRun := ks.n, ns.n
				if f.TransA {
					aRun = ms.n
				}
				if f.TransB {
					bRun = ks.n
				}
				aVec := aRun%4 == 0 && ac%4 == 0 && aoff%4 == 0
				wVec := (w.dtype == tensor.F32 || w.dtype == tensor.F16) && bRun%4 == 0 && bc%4 == 0 && woff%4 == 0
				g.run(t.kernel(w.dtype), groupsFor(ms.n, t.bm)*groupsFor(ns.n, t.bn), a32.u(bit(aVec), bit(wVec)), ms.bufs[0], ab, wb)
			}
		}
	}
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// overlaps reports whether two buffers share any element.
func overlaps(a, b *buffer) bool {
	return a.st == b.st && a.off < b.off+b.n && b.off < a.off+a.n
}

// tile is one shape of the register-tiled matrix product: a workgroup
// computes bm x bn outputs walking K in steps of bk, each invocation tm x
// tn of them (4 or 8 each).
type tile struct{ bm, bn, bk, tm, tn int }

func (t tile) invocations() int { return t.bm / t.tm * t.bn / t.tn }

// sharedBytes is the workgroup memory of the two tiles of operands.
func (t tile) sharedBytes() int { return 4 * t.bk * (t.bm + t.bn) }

// fits reports whether the adapter can run workgroups of tile t.
func (g *Backend) fits(t tile) bool {
	l := g.limits
	return t.invocations() <= int(l.MaxComputeInvocationsPerWorkgroup) &&
		t.invocations() <= int(l.MaxComputeWorkgroupSizeX) &&
		t.sharedBytes() <= int(l.MaxComputeWorkgroupStorageSize)
}

// The tiles, largest first. WebGPU guarantees 256 invocations and 16 KiB
// of workgroup memory, which the 128 x 128 tile (bk 16) fills; a deeper bk
// on adapters with more would be one more pipeline to compile for a few
// barriers less.
var (
	bigTiles   = []tile{{128, 128, 16, 8, 8}}
	smallTiles = []tile{{64, 64, 16, 4, 4}, {32, 32, 16, 4, 4}}
)

// minBigTiles is how many 128 x 128 tiles a product needs before it uses
// them: below, 64 x 64 tiles give four times the workgroups to spread
// over the device's cores.
const minBigTiles = 32

// thinMax is the widest M or N that gets a thin tile, 16 rows or columns
// by 64: LoRA's products with the rank (x·Aᵀ with A r x in, the
// gradients of A and B) have r, often 8 or 16, on one side, which a
// square tile would mostly pad; a rank of 32 or 64 fills a 64 x 64 tile.
// Few tile shapes keep few pipelines to compile (llvmpipe takes seconds
// each).
const thinMax = 16

// tileFor picks the tile for an m x n product. A thin product's tile
// spans its narrow side: each workgroup reduces all of K for a block of 64
// rows (or columns) and every rank column, kept in registers, and reads
// its rows of the wide operand once.
func (g *Backend) tileFor(m, n int) tile {
	switch {
	case m >= 128 && n >= 128 && groupsFor(m, 128)*groupsFor(n, 128) >= minBigTiles:
		return g.firstFit(append(bigTiles, smallTiles...))
	case m <= thinMax:
		return g.firstFit([]tile{{thinMax, 64, 16, 4, 4}, {thinMax, 32, 16, 4, 4}})
	case n <= thinMax:
		return g.firstFit([]tile{{64, thinMax, 16, 4, 4}, {32, thinMax, 16, 4, 4}})
	}
	return g.firstFit(smallTiles)
}

// firstFit returns the first tile the adapter can run, or the last one
// (a 32 x 32 tile of 64 invocations and 4 KiB: any WebGPU adapter).
func (g *Backend) firstFit(ts []tile) tile {
	for _, t := range ts {
		if g.fits(t) {
			return t
		}
	}
	return ts[len(ts)-1]
}

// kernel returns the tiled product for t reading a weight of dtype dt.
func (t tile) kernel(dt tensor.DType) kernel {
	k := kMatMulTiled
	k.defs = fmt.Sprintf("BM=%d BN=%d BK=%d TM=%d TN=%d", t.bm, t.bn, t.bk, t.tm, t.tn)
	switch dt {
	case tensor.F32:
		k.defs += " WF32"
	case tensor.F16:
		k.defs += " WF16"
	default:
		k.defs += " WS"
		k = k.withWeight(dt)
	}
	return k
}
