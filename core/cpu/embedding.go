package cpu

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
)

// checkIDs panics unless every id indexes one of vocab rows.
func checkIDs(op string, ids []int32, vocab int) {
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			panic(fmt.Sprintf("cpu: %s: ids[%d] = %d is outside the table's %d rows", op, i, id, vocab))
		}
	}
}

// Embedding gathers rows of table into dst [len(ids), dim]. The table may be
// of any loaded dtype; only the gathered rows are dequantized, straight into
// dst. An id outside the table panics.
func (c *Backend) Embedding(dst, table backend.Buffer, ids []int32) {
	d, t := c.f32(dst, "Embedding", "dst"), c.buf(table, "Embedding", "table")
	vocab, dim := t.dims()
	if dr, dc := d.dims(); dr != len(ids) || dc != dim {
		panic(fmt.Sprintf("cpu: Embedding: dst %v, want [%d %d] for %d ids into table %v", d.shape, len(ids), dim, len(ids), t.shape))
	}
	checkIDs("Embedding", ids, vocab)
	runTask(c, &c.tasks.embedding, len(ids), elemGrain/max(dim, 1)+1,
		embeddingTask{out: d.data(), table: t, ids: ids, dim: dim})
}

// embeddingTask gathers a range of rows.
type embeddingTask struct {
	out   []float32
	table *buffer
	ids   []int32
	dim   int
}

func (t *embeddingTask) run(lo, hi int) {
	dim := t.dim
	for r := lo; r < hi; r++ {
		t.table.decode(int(t.ids[r])*dim, t.out[r*dim:(r+1)*dim])
	}
}

// EmbeddingBackward adds row r of dy [len(ids), dim] into row ids[r] of the
// F32 table gradient dtable. Repeated ids add up. Work is split over
// columns, so no two goroutines touch the same element.
func (c *Backend) EmbeddingBackward(dtable, dy backend.Buffer, ids []int32) {
	t, g := c.f32(dtable, "EmbeddingBackward", "dtable"), c.f32(dy, "EmbeddingBackward", "dy")
	vocab, dim := t.dims()
	if gr, gc := g.dims(); gr != len(ids) || gc != dim {
		panic(fmt.Sprintf("cpu: EmbeddingBackward: dy %v, want [%d %d] for %d ids into table %v", g.shape, len(ids), dim, len(ids), t.shape))
	}
	checkIDs("EmbeddingBackward", ids, vocab)
	runTask(c, &c.tasks.embeddingBack, dim, elemGrain/max(len(ids), 1)+1,
		embeddingBackTask{table: t.data(), dy: g.data(), ids: ids, dim: dim})
}

// embeddingBackTask scatter-adds a range of columns.
type embeddingBackTask struct {
	table, dy []float32
	ids       []int32
	dim       int
}

func (t *embeddingBackTask) run(lo, hi int) {
	dim := t.dim
	for r, id := range t.ids {
		axpy(t.table[int(id)*dim+lo:int(id)*dim+hi], t.dy[r*dim+lo:r*dim+hi], 1)
	}
}
