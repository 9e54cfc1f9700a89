package model

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/formats/hfconfig"
)

// hfConfig is the config.json transformers builds this model from.
func (m *Model) hfConfig() (*hfconfig.Config, error) {
	c := m.Config
	hc := &hfconfig.Config{
		Architectures: []string{"LlamaForCausalLM"}, ModelType: hfconfig.Llama,
		HiddenSize: c.Dim, IntermediateSize: c.FFN, NumHiddenLayers: c.Layers,
		NumAttentionHeads: c.Heads, NumKeyValueHeads: c.KVHeads, HeadDim: c.HeadDim,
		RMSNormEps: float64(c.NormEps), RopeTheta: float64(c.RopeTheta),
		TieWordEmbeddings: c.TiedOutput, MaxPositionEmbeddings: c.Context, VocabSize: c.Vocab,
		HiddenAct: "silu", AttentionBias: c.OutBias, TorchDType: "float32",
	}
	// Llama's and Qwen3's attention_bias puts biases on q, k, v and o;
	// Qwen2 always has q/k/v biases and no o bias; Mistral and Gemma none.
	biases := c.AttnBias == c.OutBias
	switch c.Arch {
	case "qwen2":
		hc.Architectures, hc.ModelType = []string{"Qwen2ForCausalLM"}, hfconfig.Qwen2
		hc.AttentionBias, biases = true, c.AttnBias && !c.OutBias
	case "mistral":
		hc.Architectures, hc.ModelType = []string{"MistralForCausalLM"}, hfconfig.Mistral
		biases = !c.AttnBias && !c.OutBias
	case "qwen3":
		hc.Architectures, hc.ModelType = []string{"Qwen3ForCausalLM"}, hfconfig.Qwen3
	case "gemma3":
		hc.Architectures, hc.ModelType = []string{"Gemma3ForCausalLM"}, hfconfig.Gemma3Text
		biases = !c.AttnBias && !c.OutBias
		hc.HiddenAct = ActGELUTanh
		hc.QueryPreAttnScalar = 1 / (float64(c.AttnScale) * float64(c.AttnScale))
		if r := math.Round(hc.QueryPreAttnScalar); math.Abs(hc.QueryPreAttnScalar-r) < 1e-3*r {
			hc.QueryPreAttnScalar = r // float32 rounding of the scale
		}
		hc.RopeLocalTheta, hc.SlidingWindowPattern = float64(c.RopeThetaLocal), c.SlidingPattern
		if c.SlidingWindow > 0 {
			w := c.SlidingWindow
			hc.SlidingWindow = &w
		} else {
			hc.RopeLocalTheta = float64(c.RopeTheta)
		}
	}
	if !biases {
		return nil, fmt.Errorf("%s with q/k/v biases %v and o_proj bias %v has no config.json form", c.Arch, c.AttnBias, c.OutBias)
	}
	var err error
	if hc.RopeScaling, err = m.hfRopeScaling(); err != nil {
		return nil, err
	}
	if m.Tokenizer != nil {
		if bos := int(m.Tokenizer.BOS()); bos >= 0 {
			hc.BOSTokenID = &bos
		}
		if eos := int(m.Tokenizer.EOS()); eos >= 0 {
			hc.EOSTokenID = []int{eos}
		}
	}
	return hc, nil
}

// hfRopeScaling is the model's RopeScaling as config.json's rope_scaling.
// Llama 3 scaling read from GGUF's rope_freqs.weight has no parameters; they
// are recovered from the table.
func (m *Model) hfRopeScaling() (*hfconfig.RopeScaling, error) {
	s := m.Config.RopeScaling
	switch s.Type {
	case "":
		return nil, nil
	case RopeLinear:
		return &hfconfig.RopeScaling{RopeType: RopeLinear, Factor: s.Factor}, nil
	case RopeYaRN:
		r := &hfconfig.RopeScaling{RopeType: RopeYaRN, Factor: s.Factor, OriginalMaxPositionEmbeddings: s.OrigContext,
			AttentionFactor: s.AttnFactor, BetaFast: s.BetaFast, BetaSlow: s.BetaSlow, Mscale: s.Mscale, MscaleAllDim: s.MscaleAllDim}
		if s.NoTruncate {
			r.Truncate = new(bool)
		}
		return r, nil
	case RopeLlama3:
		if s.FreqFactors != nil && s.Factor == 0 {
			var err error
			if s, err = llama3FromFactors(float64(m.Config.RopeTheta), m.Config.HeadDim, s.FreqFactors); err != nil {
				return nil, err
			}
		}
		return &hfconfig.RopeScaling{RopeType: RopeLlama3, Factor: s.Factor, LowFreqFactor: s.LowFreqFactor,
			HighFreqFactor: s.HighFreqFactor, OriginalMaxPositionEmbeddings: s.OrigContext}, nil
	}
	return nil, fmt.Errorf("rope scaling %q has no config.json form", s.Type)
}

// llama3FromFactors recovers Llama 3 scaling parameters from llama.cpp's
// per-pair divisors (rope_freqs.weight). The table depends only on
// factor, old/low and high/low (old being original_max_position_embeddings),
// so low_freq_factor is taken as 1. The pairs in the smooth band, whose
// 1/divisor is linear in the frequency, give old and high: by a
// least-squares line through two or more of them, or, through one, with
// high_freq_factor 4 (Llama 3.1's and 3.2's); with none, any band in the
// gap gives the same table. The result is checked by recomputing the
// table.
func llama3FromFactors(theta float64, d int, ff []float32) (RopeScaling, error) {
	fail := func(why string) (RopeScaling, error) {
		return RopeScaling{}, fmt.Errorf("tensor rope_freqs.weight: %s, so it has no rope_scaling \"llama3\" form", why)
	}
	factor := 0.0
	for _, f := range ff {
		factor = max(factor, float64(f))
	}
	if factor <= 1 {
		return fail("no frequency is divided")
	}
	// Smooth pairs: 1/ff = (1-s)/factor + s with s = old/(2π(high-1))·freq - 1/(high-1).
	var n, sx, sy, sxx, sxy float64
	for i, f := range ff {
		if float64(f) > 1+1e-6 && float64(f) < factor*(1-1e-6) {
			x := math.Pow(theta, -2*float64(i)/float64(d))
			y := (1/float64(f) - 1/factor) / (1 - 1/factor)
			n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
		}
	}
	var old, high float64
	switch {
	case n >= 2:
		slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
		icept := (sy - slope*sx) / n
		if !(icept < 0) {
			return fail("the smooth band does not fit Llama 3's line")
		}
		high, old = 1-1/icept, -2*math.Pi*slope/icept
	case n == 1:
		high = 4
		old = 2 * math.Pi / sx * (sy*(high-1) + 1)
	default:
		// No pair in the band: any band between the last kept wavelength
		// and the first divided one gives the same table. Take high 4 and
		// the largest whole original context below the first divided
		// wavelength; the check below refuses it if the kept ones reach
		// past old/4.
		high = 4
		for i, f := range ff {
			if float64(f) >= factor*(1-1e-6) {
				old = math.Ceil(2*math.Pi/math.Pow(theta, -2*float64(i)/float64(d))) - 1
				break
			}
		}
	}
	// Published values are whole numbers (8192, 4): snap when close.
	if r := math.Round(old); math.Abs(old-r) < 1e-3*r {
		old = r
	}
	if r := math.Round(high*1000) / 1000; math.Abs(high-r) < 1e-4*r {
		high = r
	}
	s := RopeScaling{Type: RopeLlama3, Factor: factor, LowFreqFactor: 1, HighFreqFactor: high, OrigContext: int(old)}
	if float64(s.OrigContext) != old {
		return fail(fmt.Sprintf("the original context it implies, %g, is not whole", old))
	}
	for i, f := range llama3FreqFactors(theta, d, s) {
		if math.Abs(float64(f)-float64(ff[i])) > 1e-5*float64(ff[i]) {
			return fail(fmt.Sprintf("pair %d is %v where the fitted parameters give %v", i, ff[i], f))
		}
	}
	return s, nil
}

// ropeFreqFactors is the rope_freqs.weight tensor a GGUF of this model
// needs: llama.cpp reads Llama 3 scaling only in this form.
func (m *Model) ropeFreqFactors() []float32 {
	s := m.Config.RopeScaling
	if s.Type != RopeLlama3 {
		return nil
	}
	if s.FreqFactors != nil {
		return s.FreqFactors
	}
	return llama3FreqFactors(float64(m.Config.RopeTheta), m.Config.HeadDim, s)
}

// ggufArchKVs are the metadata keys of the architecture beyond the llama
// set: RoPE scaling and Gemma 3's local layers. What llama.cpp's GGUF
// cannot express is refused rather than dropped.
func (m *Model) ggufArchKVs(arch string) ([]gguf.KV, error) {
	c := m.Config
	var kvs []gguf.KV
	s := c.RopeScaling
	if s.Mscale != 0 || s.MscaleAllDim != 0 || s.NoTruncate {
		return nil, fmt.Errorf("YaRN's mscale, mscale_all_dim and truncate=false have no GGUF keys")
	}
	if c.Arch == "gemma3" {
		want := float32(1 / math.Sqrt(float64(c.HeadDim)))
		if c.Layers == 62 {
			want = float32(1 / math.Sqrt(float64(c.Dim/c.Heads)))
		}
		if math.Abs(float64(c.AttnScale-want)) > 1e-6*float64(want) {
			return nil, fmt.Errorf("attention scale %v (query_pre_attn_scalar %v) differs from the %v llama.cpp derives for gemma3, and GGUF has no key for it",
				c.AttnScale, 1/(c.AttnScale*c.AttnScale), want)
		}
	}
	switch s.Type {
	case RopeLinear:
		kvs = append(kvs, gguf.KV{Key: arch + ".rope.scaling.type", Value: "linear"},
			gguf.KV{Key: arch + ".rope.scaling.factor", Value: float32(s.Factor)})
	case RopeYaRN:
		orig := s.OrigContext
		if orig == 0 {
			orig = c.Context
		}
		kvs = append(kvs, gguf.KV{Key: arch + ".rope.scaling.type", Value: "yarn"},
			gguf.KV{Key: arch + ".rope.scaling.factor", Value: float32(s.Factor)},
			gguf.KV{Key: arch + ".rope.scaling.original_context_length", Value: uint32(orig)})
		for _, p := range []struct {
			key string
			v   float64
		}{{"yarn_beta_fast", s.BetaFast}, {"yarn_beta_slow", s.BetaSlow}, {"yarn_attn_factor", s.AttnFactor}} {
			if p.v != 0 {
				kvs = append(kvs, gguf.KV{Key: arch + ".rope.scaling." + p.key, Value: float32(p.v)})
			}
		}
	}
	if c.SlidingWindow > 0 {
		kvs = append(kvs, gguf.KV{Key: arch + ".attention.sliding_window", Value: uint32(c.SlidingWindow)},
			gguf.KV{Key: arch + ".rope.freq_base_swa", Value: c.RopeThetaLocal})
		if c.SlidingPattern != 6 { // llama.cpp's default for gemma3
			kvs = append(kvs, gguf.KV{Key: arch + ".attention.sliding_window_pattern", Value: uint32(c.SlidingPattern)})
		}
	}
	return kvs, nil
}
