package model

import "testing"

// planConfig is a small decoder for walking training passes.
var planConfig = Config{Arch: "llama", Dim: 16, FFN: 40, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 4, Vocab: 50,
	Context: 64, NormEps: 1e-5, RopeTheta: 10000}

// gemmaPlanConfig is planConfig with every Gemma 3 feature: q/k norms,
// post-norms, GELU, embedding scale, local layers and scaled global RoPE.
var gemmaPlanConfig = Config{Arch: "gemma3", Dim: 16, FFN: 40, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 6, Vocab: 50,
	Context: 64, NormEps: 1e-6, RopeTheta: 1e6, QKNorm: true, PostNorms: true, EmbedScale: 4, Act: ActGELUTanh, AttnScale: 0.3,
	SlidingWindow: 4, SlidingPattern: 2, RopeThetaLocal: 1e4, RopeScaling: RopeScaling{Type: RopeLinear, Factor: 8}}

// smolLM135M is SmolLM-135M's shape.
var smolLM135M = Config{Arch: "llama", Dim: 576, FFN: 1536, Layers: 30, Heads: 9, KVHeads: 3, HeadDim: 64, Vocab: 49152,
	Context: 2048, NormEps: 1e-5, RopeTheta: 10000, TiedOutput: true}

// TestTrainingStepDoesNotAllocate checks that once the workspace exists a
// training step (LossAndGrad and BatchLoss) makes no Go heap allocation in
// this package and asks the backend for no memory, with and without
// checkpointing, with hooks of every kind, and with a last chunk of logits
// shorter than the others. The backend runs no arithmetic, so only the
// model's own code is measured.
func TestTrainingStepDoesNotAllocate(t *testing.T) {
	for _, c := range []struct {
		name          string
		checkpointing bool
		hooks         bool
		cfg           Config
	}{
		{"plain", false, false, planConfig},
		{"checkpointing", true, false, planConfig},
		{"hooks", false, true, planConfig},
		{"hooks+checkpointing", true, true, planConfig},
		{"gemma3", false, false, gemmaPlanConfig},
		{"gemma3/hooks+checkpointing", true, true, gemmaPlanConfig},
	} {
		t.Run(c.name, func(t *testing.T) {
			pb := &planBackend{}
			m := planModel(c.cfg, pb)
			m.Checkpointing, m.LogitChunkRows = c.checkpointing, 7
			if c.hooks {
				hookAll(m)
			}
			tb := planBatch(2, 10)
			step := func() {
				if _, err := m.LossAndGrad(tb, 1); err != nil {
					t.Fatal(err)
				}
				if _, err := m.BatchLoss(tb); err != nil {
					t.Fatal(err)
				}
			}
			step()
			zeros := pb.zeros
			if allocs := testing.AllocsPerRun(5, step); allocs != 0 {
				t.Errorf("a steady-state step allocates %.0f times on the Go heap", allocs)
			}
			if pb.zeros != zeros {
				t.Errorf("a steady-state step asked the backend for %d new buffers", pb.zeros-zeros)
			}
		})
	}
}

// passBytes is the workspace a pass of R rows holds by construction:
// activation sets (one per layer, or one with checkpointing), each block's
// input, the gradient scratch, and logits with their gradient for
// chunkRows rows. It is written out independently of newTrainPass, for a
// model without hooks or post-norms: no backward reads o, down or act
// back, so the layers share one buffer for o and down and one for act.
func passBytes(c Config, R, chunkRows int, checkpointing bool) int64 {
	set := int64(R) * int64(3*c.Dim+2*c.QDim()+2*c.KVDim()+2*c.FFN)
	shared := int64(R) * int64(c.Dim+c.FFN)
	sets := int64(c.Layers)
	if checkpointing {
		sets = 1
	}
	inputs := int64(c.Layers) * int64(R) * int64(c.Dim)
	scratch := int64(R) * int64(6*c.Dim+2*c.QDim()+2*c.KVDim()+3*c.FFN) // xOut, hF, dx, dh, dhook, hookOut, ...
	logits := 2 * int64(chunkRows) * int64(c.Vocab)
	return 4 * (sets*set + shared + inputs + scratch + logits)
}

// TestTrainingMemorySmolLMShape measures the training workspace of
// SmolLM-135M's shape at batch 4 of 256 tokens: what the backend is asked
// for during a step, which TrainingStateBytes must report in full, with
// the head's logits whole or chunked and with and without checkpointing.
// Chunked logits and checkpointing together must hold under a sixth of the
// plain pass's memory (measured: 1239 MiB plain, 186 MiB with both).
func TestTrainingMemorySmolLMShape(t *testing.T) {
	const B, T = 4, 256
	R := B * T
	var plain, both int64
	for _, c := range []struct {
		name          string
		checkpointing bool
		chunked       bool
	}{
		{"whole logits", false, false},
		{"chunked logits", false, true},
		{"checkpointing, whole logits", true, false},
		{"checkpointing, chunked logits", true, true},
	} {
		pb := &planBackend{}
		m := planModel(smolLM135M, pb)
		m.Checkpointing = c.checkpointing
		if !c.chunked {
			m.LogitChunkRows = R
		}
		weights := pb.live
		if _, err := m.LossAndGrad(planBatch(B, T), 1); err != nil {
			t.Fatal(err)
		}
		held, peak := m.TrainingStateBytes(), pb.peak-weights
		chunk := m.logitChunkRows(R)
		if want := passBytes(smolLM135M, R, chunk, c.checkpointing); held != want {
			t.Errorf("%s: TrainingStateBytes = %d, want %d", c.name, held, want)
		}
		if peak != held {
			t.Errorf("%s: the step's peak backend memory is %d bytes, TrainingStateBytes %d", c.name, peak, held)
		}
		t.Logf("%-30s %5d MiB (logits in chunks of %d rows)", c.name, held>>20, chunk)
		m.FreeTrainingState()
		if pb.live != weights {
			t.Errorf("%s: %d bytes still held after FreeTrainingState", c.name, pb.live-weights)
		}
		switch {
		case !c.checkpointing && !c.chunked:
			plain = held
		case c.checkpointing && c.chunked:
			both = held
		}
	}
	if both*6 > plain {
		t.Errorf("checkpointing and chunked logits hold %d MiB, more than a sixth of the plain pass's %d MiB", both>>20, plain>>20)
	}
}

// BenchmarkTrainingMemory reports the training workspace of SmolLM-135M's
// shape (batch 4 x 256) in MiB, plain and with chunked logits and
// checkpointing, beside the time to lay the pass out.
func BenchmarkTrainingMemory(b *testing.B) {
	for _, c := range []struct {
		name          string
		checkpointing bool
		chunkRows     int
	}{{"plain", false, 4 * 256}, {"chunked+checkpointing", true, 0}} {
		b.Run(c.name, func(b *testing.B) {
			var held int64
			for b.Loop() {
				m := planModel(smolLM135M, &planBackend{})
				m.Checkpointing, m.LogitChunkRows = c.checkpointing, c.chunkRows
				if _, err := m.LossAndGrad(planBatch(4, 256), 1); err != nil {
					b.Fatal(err)
				}
				held = m.TrainingStateBytes()
			}
			b.ReportMetric(float64(held)/(1<<20), "MiB")
		})
	}
}

// TestTrainingPassSharesUnreadActivations checks which activations the
// layers share: o, down and act while no backward reads them back, each
// layer's own as soon as a hook or post-norm would, with the workspace
// rebuilt when hooks are added between steps.
func TestTrainingPassSharesUnreadActivations(t *testing.T) {
	step := func(m *Model) *trainPass {
		t.Helper()
		if _, err := m.LossAndGrad(planBatch(2, 10), 1); err != nil {
			t.Fatal(err)
		}
		return m.train
	}
	check := func(name string, p *trainPass, shareOut, shareAct bool) {
		t.Helper()
		l0, l1 := p.layers[0], p.layers[1]
		if got := l0.o == l1.o && l0.down == l1.o; got != shareOut {
			t.Errorf("%s: layers share o and down: %v, want %v", name, got, shareOut)
		}
		if got := l0.act == l1.act; got != shareAct {
			t.Errorf("%s: layers share act: %v, want %v", name, got, shareAct)
		}
	}
	m := planModel(planConfig, &planBackend{})
	check("no hooks", step(m), true, true)
	m.Layers[2].Down.AddHook(planLinearHook{})
	check("a hook on one down projection", step(m), true, false)
	m.Layers[1].FFNOut = planBlockHook{}
	check("and a block hook", step(m), false, false)
	check("gemma3 (post-norms)", step(planModel(gemmaPlanConfig, &planBackend{})), false, true)
}
