package model

import (
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
)

func relClose(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Abs(b) }

// The golden values below were computed in float64 with transformers'
// _compute_yarn_parameters and _compute_llama3_parameters transcribed to
// PyTorch (factor from rope_scaling, YaRN's correction range over
// original_max_position_embeddings, as transformers does since #40320 and
// llama.cpp always has).
func TestYaRNFreqsMatchTransformers(t *testing.T) {
	// Qwen2.5's documented long-context setting.
	s := RopeScaling{Type: RopeYaRN, Factor: 4, OrigContext: 32768}
	freqs, mscale := ropeFreqs(1e6, 128, s, 131072)
	golden := map[int]float64{0: 1, 10: 0.1154781984689458, 20: 0.01333521432163324, 21: 0.010746078283213174,
		25: 0.004131738022518394, 30: 0.0010643609812470017, 40: 4.445698525097307e-05, 63: 3.102344401879299e-07}
	for i, want := range golden {
		if !relClose(freqs[i], want, 1e-12) {
			t.Errorf("pair %d: frequency %v, want %v", i, freqs[i], want)
		}
	}
	if !relClose(mscale, 1.138629436111989, 1e-12) {
		t.Errorf("attention factor %v, want 0.1 ln 4 + 1", mscale)
	}
	// An explicit attention_factor wins; mscale/mscale_all_dim divide.
	if _, m := ropeFreqs(1e6, 128, RopeScaling{Type: RopeYaRN, Factor: 4, AttnFactor: 1.5}, 4096); m != 1.5 {
		t.Errorf("attention_factor 1.5 gave %v", m)
	}
	_, m := ropeFreqs(1e6, 128, RopeScaling{Type: RopeYaRN, Factor: 40, Mscale: 1, MscaleAllDim: 0.707}, 4096)
	if want := (0.1*math.Log(40) + 1) / (0.1*0.707*math.Log(40) + 1); !relClose(m, want, 1e-12) {
		t.Errorf("mscale ratio %v, want %v", m, want)
	}
}

func TestLlama3FreqsMatchTransformers(t *testing.T) {
	// Llama 3.2's rope_scaling.
	s := RopeScaling{Type: RopeLlama3, Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OrigContext: 8192}
	freqs, mscale := ropeFreqs(500000, 64, s, 131072)
	golden := map[int]float64{0: 1, 10: 0.016560440080994446, 12: 0.0072926647372171085, 14: 0.0032114459947525913,
		16: 0.00042955679655936815, 18: 1.9461638184831125e-05, 20: 8.570255489881478e-06, 31: 9.418306725434909e-08}
	for i, want := range golden {
		if !relClose(freqs[i], want, 1e-12) {
			t.Errorf("pair %d: frequency %v, want %v", i, freqs[i], want)
		}
	}
	if mscale != 1 {
		t.Errorf("llama3 scales cos/sin by %v", mscale)
	}
	// llama.cpp's form, the converter's per-pair divisors in float32, gives
	// the same table to float32 precision.
	table, _ := ropeFreqs(500000, 64, RopeScaling{Type: RopeLlama3, FreqFactors: llama3FreqFactors(500000, 64, s)}, 131072)
	for i := range freqs {
		if !relClose(table[i], freqs[i], 1e-7) {
			t.Errorf("pair %d: rope_freqs form %v, rope_scaling form %v", i, table[i], freqs[i])
		}
	}
}

func TestLinearAndPlainFreqs(t *testing.T) {
	if f, m := ropeFreqs(10000, 8, RopeScaling{}, 100); f != nil || m != 1 {
		t.Errorf("plain RoPE gave a table %v (mscale %v); the backend should compute it", f, m)
	}
	f, _ := ropeFreqs(10000, 8, RopeScaling{Type: RopeLinear, Factor: 8}, 100)
	for i, v := range f {
		if want := math.Pow(10000, -2*float64(i)/8) / 8; !relClose(v, want, 1e-15) {
			t.Errorf("linear pair %d: %v, want %v", i, v, want)
		}
	}
}

// TestLayerRoPE checks what each layer gets: Gemma 3's local layers plain
// RoPE at their own base and the window, global ones the scaling; YaRN's
// factor on cos and sin folded into the logit scale as its square.
func TestLayerRoPE(t *testing.T) {
	c := Config{Arch: "gemma3", Dim: 16, FFN: 32, Layers: 7, Heads: 2, KVHeads: 1, HeadDim: 8, Vocab: 10, Context: 64,
		NormEps: 1e-6, RopeTheta: 1e6, RoPE: backend.RoPEHalf, AttnScale: 0.25,
		SlidingWindow: 4, SlidingPattern: 6, RopeThetaLocal: 1e4, RopeScaling: RopeScaling{Type: RopeLinear, Factor: 8}}
	m := &Model{Config: c, Layers: make([]Layer, c.Layers)}
	for li, l := range m.ropeLayers() {
		global := li == 5
		switch {
		case global && (l.window != 0 || l.rope.Freqs == nil || l.rope.Freqs[1] != math.Pow(1e6, -0.25)/8):
			t.Errorf("global layer %d: %+v", li, l)
		case !global && (l.window != 4 || l.rope.Freqs != nil || l.rope.Theta != 1e4):
			t.Errorf("local layer %d: %+v", li, l)
		case l.scale != 0.25:
			t.Errorf("layer %d: scale %v, want query_pre_attn_scalar's 0.25", li, l.scale)
		}
	}
	c = Config{Arch: "qwen2", Dim: 16, FFN: 32, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 8, Vocab: 10, Context: 64,
		NormEps: 1e-6, RopeTheta: 1e6, RopeScaling: RopeScaling{Type: RopeYaRN, Factor: 4}}
	m = &Model{Config: c, Layers: make([]Layer, 1)}
	mscale := 0.1*math.Log(4) + 1
	if got, want := float64(m.ropeLayers()[0].scale), mscale*mscale/math.Sqrt(8); !relClose(got, want, 1e-6) {
		t.Errorf("YaRN logit scale %v, want %v", got, want)
	}
}

func TestRopeScalingErrors(t *testing.T) {
	for _, s := range []RopeScaling{
		{Type: "dynamic", Factor: 2},
		{Type: RopeLinear},
		{Type: RopeLlama3, Factor: 8, LowFreqFactor: 4, HighFreqFactor: 1, OrigContext: 8192},
		{Type: RopeLlama3, FreqFactors: []float32{1, 2}},
		{Type: RopeLlama3, FreqFactors: []float32{1, 0, 1, 1}},
	} {
		if err := s.check(8); err == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}

// TestLlama3FromFactors recovers config.json's parameters from the
// rope_freqs.weight llama.cpp's converter writes, for Llama 3.1 8B's and
// Llama 3.2 1B's settings.
func TestLlama3FromFactors(t *testing.T) {
	for _, tc := range []struct {
		theta float64
		d     int
		s     RopeScaling
	}{
		{500000, 128, RopeScaling{Type: RopeLlama3, Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigContext: 8192}},
		{500000, 64, RopeScaling{Type: RopeLlama3, Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OrigContext: 8192}},
	} {
		got, err := llama3FromFactors(tc.theta, tc.d, llama3FreqFactors(tc.theta, tc.d, tc.s))
		if err != nil {
			t.Fatal(err)
		}
		if got.Factor != tc.s.Factor || got.LowFreqFactor != 1 || got.HighFreqFactor != tc.s.HighFreqFactor || got.OrigContext != tc.s.OrigContext {
			t.Errorf("recovered %+v, want %+v", got, tc.s)
		}
	}
	if _, err := llama3FromFactors(500000, 8, []float32{1, 1, 1, 1}); err == nil {
		t.Error("an all-ones table gave llama3 parameters")
	}
}
