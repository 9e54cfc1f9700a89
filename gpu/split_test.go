package gpu

import (
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/backend/backendtest"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// splitBackend returns a backend of its own whose buffers split into
// parts of at most partBytes, as buffers over the binding limit do.
func splitBackend(t *testing.T, partBytes int) *Backend {
	t.Helper()
	testBackend(t) // fails with install instructions when there is no driver
	g, err := New(Options{AllowSoftware: true})
	if err != nil {
		t.Fatal(err)
	}
	g.maxPart = partBytes
	t.Cleanup(g.Close)
	return g
}

func TestPlanParts(t *testing.T) {
	for _, c := range []struct {
		dt                 tensor.DType
		total, cols, limit int
		want               int
	}{
		{tensor.F32, 100, 10, 400, 100},          // fits
		{tensor.F32, 100, 10, 399, 90},           // nine whole rows
		{tensor.F32, 100, 10, 40, 10},            // one row
		{tensor.F32, 100, 50, 40, 10},            // a row does not fit: elements
		{tensor.F16, 60, 3, 20, 6},               // whole rows at an even element
		{tensor.Q8_0, 128, 64, 70, 64},           // a row of two blocks: 68 bytes
		{tensor.Q8_0, 128, 64, 40, 32},           // one block: 34 bytes, padded to 36
		{tensor.NF4, 96 * 70, 70, 600, 896},      // rows of 70 end mid-block: 14 blocks
		{tensor.Q6_K, 24 * 256, 256, 1024, 1024}, // four rows of one 210-byte super-block
		{tensor.Q4_K, 2 * 512, 512, 200, 256},    // a row does not fit: one 144-byte super-block
	} {
		got, err := planParts(c.dt, c.total, c.cols, c.limit)
		if err != nil || got != c.want {
			t.Errorf("planParts(%v, %d, %d, %d) = %d, %v; want %d", c.dt, c.total, c.cols, c.limit, got, err, c.want)
		}
		if got < c.total && encodedBytes(c.dt, got) > c.limit {
			t.Errorf("planParts(%v, ...): a part of %d elements takes %d bytes, over %d", c.dt, got, encodedBytes(c.dt, got), c.limit)
		}
	}
	if _, err := planParts(tensor.Q4_0, 64, 64, 8); err == nil {
		t.Error("planParts accepted a limit smaller than one block")
	}
}

// TestSplitBuffers checks that a buffer over the limit is stored in parts
// of whole rows and that Write, Read, View and quantized reads cross them.
func TestSplitBuffers(t *testing.T) {
	g := splitBackend(t, 256)
	x := g.Zeros(30, 10).(*buffer)
	if got := len(x.st.parts); got != 5 {
		t.Fatalf("a [30 10] F32 buffer under a 256-byte limit has %d parts, want 5 of 6 rows", got)
	}
	vals := make([]float32, 300)
	for i := range vals {
		vals[i] = float32(i)
	}
	if err := g.Write(x, 0, vals); err != nil {
		t.Fatal(err)
	}
	before := g.ReadBacks()
	got := make([]float32, 150)
	if err := g.Read(x, 55, got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, vals[55:205]) {
		t.Errorf("Read across parts = %v...", got[:8])
	}
	if n := g.ReadBacks() - before; n != 1 {
		t.Errorf("one Read across parts read back %d times", n)
	}
	v := g.View(x, 60, 12, 10)
	dst := g.Zeros(12, 10)
	g.Scale(dst, v, 2)
	if err := g.Read(dst, 0, got[:120]); err != nil {
		t.Fatal(err)
	}
	for i, w := range vals[60:180] {
		if got[i] != 2*w {
			t.Fatalf("Scale of a view across parts: [%d] = %v, want %v", i, got[i], 2*w)
		}
	}
	q := make([]byte, 34*40)
	qv := make([]float32, 40*32)
	for i := range qv {
		qv[i] = float32(i%17) - 8
	}
	if err := tensor.Encode(tensor.Q8_0, qv, q); err != nil {
		t.Fatal(err)
	}
	wt, err := tensor.New("w", tensor.Q8_0, tensor.Shape{20, 64}, q)
	if err != nil {
		t.Fatal(err)
	}
	wb, err := g.Load(wt)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(wb.(*buffer).st.parts); n < 2 {
		t.Fatalf("a Q8_0 weight of %d bytes is in %d part", len(q), n)
	}
	want := make([]float32, len(qv))
	c := cpu.New()
	if err := c.Read(mustLoad(t, c, wt), 0, want); err != nil {
		t.Fatal(err)
	}
	gotq := make([]float32, 1000)
	if err := g.Read(wb, 100, gotq); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotq, want[100:1100]) {
		t.Errorf("Q8_0 read across parts differs from the CPU")
	}
	// A view whose rows straddle parts cannot go row by row.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Softmax over rows that straddle parts did not panic")
			}
		}()
		odd := g.View(x, 5, 10, 10)
		g.Softmax(odd, odd, 1)
	}()
}

func mustLoad(t *testing.T, be backend.Backend, tt *tensor.Tensor) backend.Buffer {
	t.Helper()
	b, err := be.Load(tt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformanceSplit runs the shared suite with buffers split at 512
// bytes, so that nearly every operand of every operation is in parts.
// Attention needs each sequence's rows in one part, which the suite's
// shapes do not give at this limit, so its cases run unsplit. The ggml
// cases' rows of 256 F32 values take 1024 bytes, so they split at 1024:
// their weights lie in parts of a few rows (Q6_K: 4 rows of 210-byte
// super-blocks), and each part starts a block at its byte 0.
func TestConformanceSplit(t *testing.T) {
	g, g1k := splitBackend(t, 512), splitBackend(t, 1024)
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		switch {
		case strings.Contains(t.Name(), "/Attention"):
			return testBackend(t)
		case strings.Contains(t.Name(), "/GGML/"):
			return g1k
		}
		return g
	})
	t.Logf("%d dispatches", g.Dispatches()+g1k.Dispatches())
}

// TestGenerateSplitMatchesCPU generates from stories260K with buffers
// split at 64 KiB: the tied embedding table and lm_head [512 64] is in two
// parts (the gather and the logits MatMul run per part) while each
// layer's KV cache [512 32] still fits in one, as attention needs; the
// tokens are the CPU's.
func TestGenerateSplitMatchesCPU(t *testing.T) {
	g := splitBackend(t, 64<<10)
	gen := func(be backend.Backend) []int32 {
		m := loadModel(t, be)
		prompt := m.Tokenizer.Encode("Once upon a time, there was a little blue owl", true)
		out, err := m.Generate(prompt, model.GenerateOptions{MaxTokens: 40})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want, got := gen(cpu.New()), gen(g)
	if !slices.Equal(got, want) {
		t.Errorf("gpu generated %v\ncpu generated %v", got, want)
	}
}
