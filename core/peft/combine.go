package peft

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Combination types of AddWeightedAdapter.
const (
	CombineLinear = "linear"
	CombineCat    = "cat"
	CombineSVD    = "svd"
)

// AddWeightedAdapter adds adapter newName combining existing LoRA adapters
// with the given weights, as PEFT's add_weighted_adapter does. With w_i the
// weights, s_i the adapters' scalings and A_i, B_i their matrices on a
// layer:
//
//   - "linear" (all adapters of the same rank r, counting rank_pattern):
//     A = Σ sign(w_i s_i)·√|w_i s_i|·A_i and B = Σ √|w_i s_i|·B_i, so
//     B·A = (Σ c_i B_i)(Σ c_i' A_i), cross terms included, of rank r;
//   - "cat": A = [w_1 s_1 A_1; w_2 s_2 A_2; …] and B = [B_1, B_2, …], so
//     B·A = Σ w_i s_i B_i A_i exactly, of rank Σ r_i;
//   - "svd": the best rank-k approximation (k = svdRank, or the largest
//     rank when 0) of Σ w_i s_i ΔW_i with ΔW_i = s_i B_i A_i, PEFT's
//     get_delta_weight (PEFT scales each ΔW by w_i s_i, so s_i enters
//     twice; graft does the same), as B = U_k·diag(S_k), A = V_kᵀ.
//
// The new adapter's config is the first adapter's with r = lora_alpha =
// the new rank (scaling 1 without rsLoRA), no rank or alpha pattern, and
// target_modules the union of the adapters' (their names, or their
// patterns joined as "(p1)|(p2)"); a layer takes the adapters that target
// it. A single adapter always combines linearly. The new adapter is added
// inactive. PEFT's other types (ties, dare_*, magnitude_prune*) are not
// implemented, and DoRA adapters are refused.
//
// The "svd" decomposition never forms ΔW: with B = [w_i s_i² B_i] and A =
// [A_i] stacked, Σ w_i s_i ΔW_i = B·A, and QR factors of B and Aᵀ reduce
// its SVD to one of a (Σ r_i)² core.
func (mg *Manager) AddWeightedAdapter(adapters []string, weights []float64, newName, combinationType string, svdRank int) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("lora: add_weighted_adapter %q: %s", newName, fmt.Sprintf(format, args...))
	}
	if len(adapters) == 0 {
		return fail("no adapters to combine")
	}
	if len(weights) != len(adapters) {
		return fail("%d weights for %d adapters", len(weights), len(adapters))
	}
	if svdRank < 0 {
		return fail("svd_rank %d is negative", svdRank)
	}
	srcs := make([]*adapter, len(adapters))
	for i, n := range adapters {
		a, err := mg.adapter(n)
		if err != nil {
			return fail("%v", err)
		}
		if a.cfg.UseDoRA {
			return fail("adapter %q uses DoRA, which combining does not support", n)
		}
		if math.IsNaN(weights[i]) || math.IsInf(weights[i], 0) {
			return fail("weight %g of adapter %q is not finite", weights[i], n)
		}
		srcs[i] = a
	}
	if len(adapters) == 1 {
		combinationType = CombineLinear
	}
	ranks := make([]int, len(srcs))
	for i, a := range srcs {
		ranks[i] = a.cfg.R
		for _, p := range a.cfg.RankPattern {
			ranks[i] = max(ranks[i], p.Value)
		}
	}
	var newRank int
	switch combinationType {
	case CombineLinear:
		for _, r := range ranks[1:] {
			if r != ranks[0] {
				return fail("combination_type linear needs adapters of one rank, have ranks %v", ranks)
			}
		}
		newRank = ranks[0]
	case CombineCat:
		for _, r := range ranks {
			newRank += r
		}
	case CombineSVD:
		newRank = svdRank
		if newRank == 0 {
			newRank = slices.Max(ranks)
		}
	default:
		return fail("combination_type %q is not supported (supported: %q, %q, %q)", combinationType, CombineLinear, CombineCat, CombineSVD)
	}
	cfg := srcs[0].cfg
	targets, err := unionTargets(srcs)
	if err != nil {
		return fail("%v", err)
	}
	cfg.TargetModules = targets
	cfg.R, cfg.LoraAlpha = newRank, float64(newRank)
	cfg.RankPattern, cfg.AlphaPattern = nil, nil

	return mg.addAdapter(newName, cfg, func(t target) (layerInit, error) {
		h := mg.layerOf(t.lin)
		var parts []combinePart
		for i, n := range adapters {
			if h == nil || h.weights[n] == nil {
				continue
			}
			w := h.weights[n]
			a, err := readAll(mg.b, w.A)
			if err != nil {
				return layerInit{}, err
			}
			b, err := readAll(mg.b, w.B)
			if err != nil {
				return layerInit{}, err
			}
			parts = append(parts, combinePart{a: toFloat64(a), b: toFloat64(b), r: w.r, weight: weights[i], scaling: w.scaling})
		}
		if len(parts) == 0 {
			return layerInit{}, fail("%s: none of the adapters targets this layer", t.lin.Name)
		}
		var a, b []float64
		var err error
		switch combinationType {
		case CombineLinear:
			a, b, err = combineLinear(parts, t.r, t.lin.In, t.lin.Out)
		case CombineCat:
			a, b = combineCat(parts, t.r, t.lin.In, t.lin.Out)
		case CombineSVD:
			a, b, err = combineSVD(parts, t.r, t.lin.In, t.lin.Out)
		}
		if err != nil {
			return layerInit{}, fail("%s: %v", t.lin.Name, err)
		}
		return layerInit{a: toFloat32(a), b: toFloat32(b)}, nil
	})
}

// combinePart is one adapter's matrices on a layer, in float64.
type combinePart struct {
	a, b            []float64 // [r, in], [out, r]
	r               int
	weight, scaling float64
}

// unionTargets is PEFT's target_modules of a combination: the union of
// name lists, or the patterns joined into one alternation.
func unionTargets(srcs []*adapter) (Modules, error) {
	isPattern := srcs[0].cfg.TargetModules.Pattern != ""
	var names []string
	var patterns []string
	for _, a := range srcs {
		tm := a.cfg.TargetModules
		if (tm.Pattern != "") != isPattern {
			return Modules{}, fmt.Errorf("the adapters mix target_modules given as a pattern and as names, which PEFT cannot combine")
		}
		if isPattern {
			patterns = append(patterns, "("+tm.Pattern+")")
			continue
		}
		for _, n := range tm.Names {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if isPattern {
		return TargetPattern(strings.Join(patterns, "|")), nil
	}
	slices.Sort(names)
	return TargetNames(names...), nil
}

func combineLinear(parts []combinePart, r, in, out int) (a, b []float64, err error) {
	a, b = make([]float64, r*in), make([]float64, out*r)
	for _, p := range parts {
		if p.r != r {
			return nil, nil, fmt.Errorf("combination_type linear needs rank %d, an adapter has rank %d here", r, p.r)
		}
		ws := p.weight * p.scaling
		cb := math.Sqrt(math.Abs(ws))
		ca := math.Copysign(cb, ws)
		if ws == 0 {
			ca = 0
		}
		for i, v := range p.a {
			a[i] += ca * v
		}
		for i, v := range p.b {
			b[i] += cb * v
		}
	}
	return a, b, nil
}

func combineCat(parts []combinePart, r, in, out int) (a, b []float64) {
	a, b = make([]float64, r*in), make([]float64, out*r)
	row := 0
	for _, p := range parts {
		ws := p.weight * p.scaling
		for i, v := range p.a {
			a[row*in+i] = ws * v
		}
		for o := range out {
			copy(b[o*r+row:o*r+row+p.r], p.b[o*p.r:(o+1)*p.r])
		}
		row += p.r
	}
	return a, b
}

func combineSVD(parts []combinePart, r, in, out int) (a, b []float64, err error) {
	if r > min(in, out) {
		return nil, nil, fmt.Errorf("svd rank %d exceeds min(out %d, in %d)", r, out, in)
	}
	total := 0
	for _, p := range parts {
		total += p.r
	}
	// Σ (w_i s_i)·(s_i B_i A_i) = [w_i s_i² B_i]·[A_i].
	bs := make([]float64, out*total)
	as := make([]float64, total*in)
	col := 0
	for _, p := range parts {
		c := p.weight * p.scaling * p.scaling
		for o := range out {
			for j := range p.r {
				bs[o*total+col+j] = c * p.b[o*p.r+j]
			}
		}
		copy(as[col*in:], p.a)
		col += p.r
	}
	u, sv, vt := svdProduct(bs, as, out, total, in)
	k := len(sv)
	a, b = make([]float64, r*in), make([]float64, out*r)
	for i := range min(r, k) {
		copy(a[i*in:(i+1)*in], vt[i*in:(i+1)*in])
		for o := range out {
			b[o*r+i] = u[o*k+i] * sv[i]
		}
	}
	return a, b, nil
}
