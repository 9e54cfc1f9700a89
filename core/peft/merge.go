package peft

import (
	"errors"
	"fmt"
	"slices"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// Merging writes W += scaling · B·A into a layer's base weight, so the
// adapter costs nothing at inference.
//
// An F32 weight is updated in place with one backend MatMul (Accumulate),
// and Unmerge subtracts the same product, which restores W up to float32
// rounding, as PEFT's unmerge does.
//
// A weight stored as F16, BF16 or a quantized type, and the output head
// when it shares the token embedding, are not touched: Merge reads the base
// weight row block by row block (backend Read dequantizes), uploads it as a
// new F32 buffer, merges into that, and keeps the original. Unmerge frees
// the copy and restores the original exactly. graft does not re-encode the
// merged weight in its old dtype: a LoRA update is usually far smaller than
// a quantization step (Q8_0's is max|w|/127 per 32 values), so rounding it
// back would erase much of the adapter. The price is F32 memory for the
// merged layers; MergeAndUnload then frees the originals.
//
// A DoRA adapter merges as PEFT's does, W' = (m / ‖W + s·B·A‖_row) ⊙
// (W + s·B·A) with the norm of the weight it merges into, and always into
// an F32 copy, since dividing the rows again would not restore W exactly.

// Merge folds the named adapters, or the active ones when none are named,
// into the base weights. Forward skips merged adapters, so outputs do not
// change (up to rounding). Adapters already merged are left alone.
func (mg *Manager) Merge(names ...string) error {
	if mg.rowAdapters != nil {
		return errors.New("lora: Merge: mixed-adapter batches are on (SetRowAdapters); switch them off first")
	}
	if len(names) == 0 {
		names = mg.active
		if len(names) == 0 {
			return errors.New("lora: Merge: no active adapters")
		}
	}
	var todo []*adapter
	for _, n := range names {
		a, err := mg.adapter(n)
		if err != nil {
			return err
		}
		todo = append(todo, a)
	}
	for _, a := range todo {
		for _, w := range a.modules {
			if w.merged {
				continue
			}
			if err := checkMergeOrder(w.layer.lin, w.layer); err != nil {
				return fmt.Errorf("lora: merging adapter %q: %w", a.name, err)
			}
		}
	}
	for _, a := range todo {
		for _, w := range a.modules {
			if w.merged {
				continue
			}
			if err := mg.mergeOne(w); err != nil {
				return fmt.Errorf("lora: merging adapter %q into %s: %w", a.name, w.layer.lin.Name, err)
			}
		}
	}
	mg.clearPasses()
	return nil
}

func (mg *Manager) mergeOne(w *loraWeights) error {
	h := w.layer
	lin := h.lin
	// A DoRA merge rescales rows, which subtracting cannot undo exactly:
	// it always works on a copy.
	if h.original == nil && (lin.Weight.DType() != tensor.F32 || lin.Weight == mg.m.Embed || w.dora != nil) {
		cp, err := f32Copy(mg.b, lin.Weight, lin.Out, lin.In)
		if err != nil {
			return err
		}
		h.original, lin.Weight = lin.Weight, cp
	}
	if w.dora != nil {
		w.doraMerge(mg.b)
	} else {
		mg.b.MatMul(lin.Weight, w.B, w.A, backend.MatMul{Accumulate: true, Alpha: float32(w.scaling)})
	}
	w.merged = true
	h.merged = append(h.merged, w)
	return nil
}

// f32Copy reads a weight of any dtype a block of rows at a time into a new
// F32 buffer, so no more than a bounded host slice is ever held.
func f32Copy(b backend.Backend, src backend.Buffer, rows, cols int) (backend.Buffer, error) {
	dst := b.Zeros(rows, cols)
	step := max(1, (1<<16)/max(cols, 1))
	tmp := make([]float32, min(step, rows)*cols)
	for r0 := 0; r0 < rows; r0 += step {
		chunk := tmp[:min(step, rows-r0)*cols]
		if err := b.Read(src, r0*cols, chunk); err != nil {
			b.Free(dst)
			return nil, fmt.Errorf("reading rows from %d: %w", r0, err)
		}
		if err := b.Write(dst, r0*cols, chunk); err != nil {
			b.Free(dst)
			return nil, fmt.Errorf("writing rows from %d: %w", r0, err)
		}
	}
	return dst, nil
}

// Merged returns the adapters merged into at least one base weight, in
// the order they were added.
func (mg *Manager) Merged() []string {
	var out []string
	for _, n := range mg.order {
		if slices.ContainsFunc(mg.adapters[n].modules, func(w *loraWeights) bool { return w.merged }) {
			out = append(out, n)
		}
	}
	return out
}

// Unmerge takes every merged adapter out of the base weights again. It
// refuses, changing nothing, while an adapter of another method that
// wraps a merged layer is merged itself (see layerstack.go).
func (mg *Manager) Unmerge() error {
	for _, h := range mg.layers {
		if len(h.merged) > 0 {
			if err := checkUnmergeOrder(h.lin, h); err != nil {
				return fmt.Errorf("lora: %w", err)
			}
		}
	}
	for _, h := range mg.layers {
		if len(h.merged) == 0 {
			continue
		}
		if h.original != nil {
			mg.b.Free(h.lin.Weight)
			h.lin.Weight, h.original = h.original, nil
		} else {
			for i := len(h.merged) - 1; i >= 0; i-- {
				w := h.merged[i]
				mg.b.MatMul(h.lin.Weight, w.B, w.A, backend.MatMul{Accumulate: true, Alpha: -float32(w.scaling)})
			}
		}
		for _, w := range h.merged {
			w.merged = false
		}
		h.merged = nil
	}
	mg.clearPasses()
	return nil
}

// MergeAndUnload merges the active adapters into the base weights, then
// removes every adapter and hook: the model becomes a plain model with the
// adaptation built in, like PEFT's merge_and_unload. Base weights replaced
// by F32 copies are freed, except a token embedding the output head shared
// (the head is no longer tied afterwards).
func (mg *Manager) MergeAndUnload() error {
	if len(mg.active) > 0 {
		if err := mg.Merge(); err != nil {
			return err
		}
	}
	for _, h := range mg.layers {
		// The residual of PiSSA or OLoRA, with the adapters merged into
		// it, is the new weight; the model's own weight goes the way of
		// one replaced by a merge.
		if h.pristine != nil {
			if h.original != nil {
				mg.b.Free(h.original) // the residual, ours
			}
			h.original, h.pristine, h.mutators = h.pristine, nil, nil
		}
		if h.original == nil {
			continue
		}
		if d := mg.m.WeightDTypes; d != nil {
			d[tensor.F32.String()]++
			if h.original != mg.m.Embed {
				old := h.original.DType().String()
				if d[old]--; d[old] <= 0 {
					delete(d, old)
				}
			}
		}
		if h.original == mg.m.Embed {
			mg.m.Config.TiedOutput = false
		} else {
			mg.b.Free(h.original)
		}
		h.original = nil
	}
	for _, h := range mg.layers {
		h.merged = nil // now part of the base weights
	}
	mg.release()
	return nil
}
