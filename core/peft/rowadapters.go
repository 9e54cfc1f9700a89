package peft

import (
	"fmt"
	"slices"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// BaseAdapterName in SetRowAdapters stands for no adapter: the row gets the
// base model's output, as "__base__" does in PEFT's adapter_names.
const BaseAdapterName = "__base__"

// SetRowAdapters makes each sequence of a batch use its own adapter, like
// the adapter_names argument of PEFT's forward: names[i] is the adapter of
// batch row i (BaseAdapterName for none), whatever SetActive chose. The
// model runs B sequences of T tokens as B·T rows, so a layer that receives
// R rows gives rows [i·R/B, (i+1)·R/B) to names[i]; every pass must then
// have a multiple of len(names) rows (a Linear called with any other row
// count panics, naming both numbers). Backward follows the same split, so
// mixed batches also train.
//
// Each adapter's rows are gathered into one sub-batch (backend Embedding),
// put through its A and B, and scattered back (EmbeddingBackward), so a
// batch costs one adapter product per distinct adapter, as in PEFT.
// As in PEFT, DoRA adapters and merged adapters are refused. A nil or
// empty names switches mixed batches off.
func (mg *Manager) SetRowAdapters(names []string) error {
	if len(names) == 0 {
		mg.rowAdapters = nil
		mg.clearPasses()
		return nil
	}
	if merged := mg.Merged(); len(merged) > 0 {
		return fmt.Errorf("lora: SetRowAdapters: adapters %q are merged; Unmerge first", merged)
	}
	for i, n := range names {
		if n == BaseAdapterName {
			continue
		}
		a, err := mg.adapter(n)
		if err != nil {
			return fmt.Errorf("lora: SetRowAdapters: row %d: %w", i, err)
		}
		if a.cfg.UseDoRA {
			return fmt.Errorf("lora: SetRowAdapters: row %d: adapter %q uses DoRA, which mixed batches do not support (as in PEFT)", i, n)
		}
	}
	mg.rowAdapters = slices.Clone(names)
	mg.clearPasses()
	return nil
}

// RowAdapters returns the per-row adapters SetRowAdapters set, or nil.
func (mg *Manager) RowAdapters() []string { return slices.Clone(mg.rowAdapters) }

// subBatch is the gathered rows of one adapter in a mixed pass.
type subBatch struct {
	ids      []int32
	rows     int
	xs, ys   backend.Buffer // [rows, In], [rows, Out]
	dys, dxs backend.Buffer // [rows, Out], [rows, In]
}

func (s *subBatch) free(b backend.Backend) {
	if s == nil {
		return
	}
	for _, buf := range []backend.Buffer{s.xs, s.ys, s.dys, s.dxs} {
		if buf != nil {
			b.Free(buf)
		}
	}
	*s = subBatch{}
}

// forwardRows is Forward for a mixed-adapter batch.
func (h *loraLayer) forwardRows(b backend.Backend, l *model.Linear, dst, x backend.Buffer) {
	mg := h.mgr
	names := mg.rowAdapters
	rows := rowsOf(x, l.In)
	if rows%len(names) != 0 {
		panic(fmt.Sprintf("peft: %s: SetRowAdapters named %d batch rows but the layer got %d rows, not a multiple", l.Name, len(names), rows))
	}
	per := rows / len(names)
	h.mixed = true
	h.baseForward(b, l, dst, x, rows, false)
	var seen []string
	for _, name := range names {
		if name == BaseAdapterName || slices.Contains(seen, name) {
			continue
		}
		seen = append(seen, name)
		w := h.weights[name]
		if w == nil {
			continue // the adapter does not target this layer
		}
		var ids []int32
		for i, n := range names {
			if n == name {
				for r := i * per; r < (i+1)*per; r++ {
					ids = append(ids, int32(r))
				}
			}
		}
		s := w.ensureSub(b, len(ids), l.In, l.Out)
		s.ids = ids
		b.Embedding(s.xs, x, ids)
		w.forward(b, s.ys, s.xs, len(ids), mg.training, mg.rng, false)
		b.EmbeddingBackward(dst, s.ys, ids)
		h.pass = append(h.pass, w)
	}
}

// ensureSub sizes the weights' sub-batch buffers for rows gathered rows.
func (w *loraWeights) ensureSub(b backend.Backend, rows, in, out int) *subBatch {
	if w.sub == nil {
		w.sub = &subBatch{}
	}
	s := w.sub
	if s.xs == nil || s.rows != rows {
		s.free(b)
		s.rows = rows
		s.xs, s.ys = b.Zeros(rows, in), b.Zeros(rows, out)
		s.dys, s.dxs = b.Zeros(rows, out), b.Zeros(rows, in)
	}
	return s
}

// backwardRows is backward for the adapter's gathered rows: dy is gathered
// the same way and the input gradient scattered back into dx.
func (w *loraWeights) backwardRows(b backend.Backend, dx, dy, x backend.Buffer) {
	s := w.sub
	b.Embedding(s.dys, dy, s.ids)
	if dx == nil {
		w.backward(b, nil, s.dys, s.xs, false)
		return
	}
	w.backward(b, s.dxs, s.dys, s.xs, false)
	b.EmbeddingBackward(dx, s.dxs, s.ids)
}
