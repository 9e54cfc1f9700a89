package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/graft-ml/graft/core/backend"
)

// RoPE scaling types, as config.json's rope_scaling names them.
const (
	RopeLinear = "linear"
	RopeLlama3 = "llama3"
	RopeYaRN   = "yarn"
)

// supportedRopeScaling lists the rope_scaling types graft applies, for
// errors.
var supportedRopeScaling = []string{"default", RopeLinear, RopeLlama3, RopeYaRN}

// RopeScaling stretches RoPE's frequencies beyond the context a model was
// pretrained on. The zero value is plain RoPE. Scaling applies to the
// global layers only where a model also has local (sliding-window) ones.
type RopeScaling struct {
	// Type is "" (none), RopeLinear, RopeLlama3 or RopeYaRN.
	Type   string  `json:",omitempty"`
	Factor float64 `json:",omitempty"`
	// LowFreqFactor and HighFreqFactor bound the band that Llama 3's
	// scaling interpolates smoothly.
	LowFreqFactor  float64 `json:",omitempty"`
	HighFreqFactor float64 `json:",omitempty"`
	// OrigContext is original_max_position_embeddings (Llama 3, YaRN);
	// YaRN falls back on the model's context when it is 0.
	OrigContext int `json:",omitempty"`
	// BetaFast and BetaSlow bound YaRN's ramp (0: 32 and 1).
	BetaFast float64 `json:",omitempty"`
	BetaSlow float64 `json:",omitempty"`
	// AttnFactor multiplies YaRN's cos and sin (0: 0.1 ln(Factor) + 1, or
	// the ratio Mscale and MscaleAllDim give, as transformers computes it).
	AttnFactor   float64 `json:",omitempty"`
	Mscale       float64 `json:",omitempty"`
	MscaleAllDim float64 `json:",omitempty"`
	// NoTruncate turns off YaRN's rounding of the ramp's bounds to whole
	// dimensions (transformers' truncate=false; llama.cpp always rounds).
	NoTruncate bool `json:",omitempty"`
	// FreqFactors divide each pair's frequency: GGUF's rope_freqs.weight,
	// the form llama.cpp's converter gives Llama 3 scaling. When set it is
	// what is applied; Type and the other fields describe it for saving.
	FreqFactors []float32 `json:",omitempty"`
}

// Scaled reports whether s changes RoPE at all.
func (s RopeScaling) Scaled() bool { return s.Type != "" || s.FreqFactors != nil }

// check validates the parameters of a scaling type.
func (s RopeScaling) check(headDim int) error {
	if s.FreqFactors != nil {
		if len(s.FreqFactors) != headDim/2 {
			return fmt.Errorf("rope frequency factors: %d values for %d rotated pairs", len(s.FreqFactors), headDim/2)
		}
		for i, f := range s.FreqFactors {
			if !(f > 0) || math.IsInf(float64(f), 0) {
				return fmt.Errorf("rope frequency factor %d is %v, want a positive number", i, f)
			}
		}
	}
	positive := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("rope_scaling %q: %s is %v, want a positive number", s.Type, name, v)
		}
		return nil
	}
	switch s.Type {
	case "":
		return nil
	case RopeLinear, RopeYaRN:
		return positive("factor", s.Factor)
	case RopeLlama3:
		if s.FreqFactors != nil {
			return nil // the table is what applies
		}
		for _, p := range []struct {
			name string
			v    float64
		}{{"factor", s.Factor}, {"low_freq_factor", s.LowFreqFactor}, {"high_freq_factor", s.HighFreqFactor}, {"original_max_position_embeddings", float64(s.OrigContext)}} {
			if err := positive(p.name, p.v); err != nil {
				return err
			}
		}
		if s.HighFreqFactor <= s.LowFreqFactor {
			return fmt.Errorf("rope_scaling \"llama3\": high_freq_factor %v must exceed low_freq_factor %v", s.HighFreqFactor, s.LowFreqFactor)
		}
		return nil
	default:
		return fmt.Errorf("rope_scaling type %q is not supported (supported: %s)", s.Type, strings.Join(supportedRopeScaling, ", "))
	}
}

// ropeFreqs returns the angular frequency of each of the d/2 rotated pairs
// of a RoPE with base theta scaled by s, and the factor YaRN multiplies
// cos and sin by (1 for the others). context is the model's context, YaRN's
// original context when s does not name one. A nil table means plain RoPE,
// which the backend computes itself.
func ropeFreqs(theta float64, d int, s RopeScaling, context int) ([]float64, float64) {
	if !s.Scaled() {
		return nil, 1
	}
	freqs := make([]float64, d/2)
	for i := range freqs {
		freqs[i] = math.Pow(theta, -2*float64(i)/float64(d))
	}
	mscale := 1.0
	switch {
	case s.FreqFactors != nil:
		// llama.cpp divides θ by the factor of each pair.
		for i, f := range s.FreqFactors {
			freqs[i] /= float64(f)
		}
	case s.Type == RopeLinear:
		for i := range freqs {
			freqs[i] /= s.Factor
		}
	case s.Type == RopeLlama3:
		llama3Freqs(freqs, s)
	case s.Type == RopeYaRN:
		mscale = yarnFreqs(freqs, theta, d, s, context)
	}
	return freqs, mscale
}

// llama3Freqs applies Llama 3.1's scaling (transformers'
// _compute_llama3_parameters): wavelengths longer than
// OrigContext/LowFreqFactor are divided by Factor, those shorter than
// OrigContext/HighFreqFactor kept, and the band between interpolated.
func llama3Freqs(freqs []float64, s RopeScaling) {
	old := float64(s.OrigContext)
	lowWave, highWave := old/s.LowFreqFactor, old/s.HighFreqFactor
	for i, f := range freqs {
		wave := 2 * math.Pi / f
		switch {
		case wave < highWave:
		case wave > lowWave:
			freqs[i] = f / s.Factor
		default:
			smooth := (old/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			freqs[i] = (1-smooth)*f/s.Factor + smooth*f
		}
	}
}

// llama3FreqFactors returns the per-pair divisors llama.cpp's converter
// writes as rope_freqs.weight for Llama 3 scaling.
func llama3FreqFactors(theta float64, d int, s RopeScaling) []float32 {
	freqs := make([]float64, d/2)
	for i := range freqs {
		freqs[i] = math.Pow(theta, -2*float64(i)/float64(d))
	}
	scaled := append([]float64(nil), freqs...)
	llama3Freqs(scaled, s)
	out := make([]float32, len(freqs))
	for i := range out {
		out[i] = float32(freqs[i] / scaled[i])
	}
	return out
}

// yarnFreqs applies YaRN (transformers' _compute_yarn_parameters, which
// llama.cpp's ggml_rope_yarn matches): pairs that turn fewer than BetaSlow
// times over the original context are interpolated (divided by Factor),
// those turning more than BetaFast times kept, with a linear ramp between.
// It returns the attention factor that scales cos and sin.
func yarnFreqs(freqs []float64, theta float64, d int, s RopeScaling, context int) float64 {
	orig := float64(s.OrigContext)
	if orig <= 0 {
		orig = float64(context)
	}
	betaFast, betaSlow := s.BetaFast, s.BetaSlow
	if betaFast == 0 {
		betaFast = 32
	}
	if betaSlow == 0 {
		betaSlow = 1
	}
	// The dimension at which a pair turns rot times over the context.
	dim := func(rot float64) float64 {
		return float64(d) * math.Log(orig/(rot*2*math.Pi)) / (2 * math.Log(theta))
	}
	low, high := dim(betaFast), dim(betaSlow)
	if !s.NoTruncate {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low, high = max(low, 0), min(high, float64(d-1))
	if low == high {
		high += 0.001 // as transformers does, against a zero-width ramp
	}
	for i, f := range freqs {
		ramp := min(max((float64(i)-low)/(high-low), 0), 1)
		extrapolate := 1 - ramp
		freqs[i] = f/s.Factor*(1-extrapolate) + f*extrapolate
	}
	if s.AttnFactor != 0 {
		return s.AttnFactor
	}
	mscale := func(scale, m float64) float64 {
		if scale <= 1 {
			return 1
		}
		return 0.1*m*math.Log(scale) + 1
	}
	if s.Mscale != 0 && s.MscaleAllDim != 0 {
		return mscale(s.Factor, s.Mscale) / mscale(s.Factor, s.MscaleAllDim)
	}
	return mscale(s.Factor, 1)
}

// layerRoPE is what one decoder block's attention needs of the position
// scheme: its rotation, its logit scale and its window.
type layerRoPE struct {
	rope   backend.RoPE
	scale  float32 // attention logit scale, YaRN's factor squared folded in
	window int     // sliding window; 0 attends to every earlier position
}

// ropeKey is what layerRoPE tables are computed from: they are rebuilt
// when it changes (a Config edited after the first pass).
type ropeKey struct {
	style                    backend.RoPEStyle
	headDim, context, layers int
	theta, thetaLocal, scale float32
	window, pattern          int
	// RopeScaling's fields (the struct holds a slice, so it is not
	// comparable); FreqFactors by its first element's address and length.
	typ                                   string
	factor, low, high, betaFast, betaSlow float64
	attn, mscale, mscaleAll               float64
	orig, nFactors                        int
	noTruncate                            bool
	factors                               *float32
}

func (c Config) ropeKey(layers int) ropeKey {
	s := c.RopeScaling
	k := ropeKey{style: c.RoPE, headDim: c.HeadDim, context: c.Context, layers: layers, theta: c.RopeTheta,
		thetaLocal: c.RopeThetaLocal, scale: c.AttnScale, window: c.SlidingWindow, pattern: c.SlidingPattern,
		typ: s.Type, factor: s.Factor, low: s.LowFreqFactor, high: s.HighFreqFactor, betaFast: s.BetaFast, betaSlow: s.BetaSlow,
		attn: s.AttnFactor, mscale: s.Mscale, mscaleAll: s.MscaleAllDim, orig: s.OrigContext, nFactors: len(s.FreqFactors),
		noTruncate: s.NoTruncate}
	if k.nFactors > 0 {
		k.factors = &s.FreqFactors[0]
	}
	return k
}

// ropeLayers returns each layer's rotation and attention scale, computed
// once per model (and again if the Config changes).
func (m *Model) ropeLayers() []layerRoPE {
	c := m.Config
	key := c.ropeKey(max(len(m.Layers), c.Layers))
	if m.ropes != nil && m.ropeKey == key {
		return m.ropes
	}
	scale := float64(c.AttnScale)
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(c.HeadDim))
	}
	global, globalM := ropeFreqs(float64(c.RopeTheta), c.HeadDim, c.RopeScaling, c.Context)
	out := make([]layerRoPE, key.layers)
	for li := range out {
		l := layerRoPE{rope: backend.RoPE{Style: c.RoPE, HeadDim: c.HeadDim, Theta: c.RopeTheta, Freqs: global}}
		mscale := globalM
		if c.IsLocal(li) {
			// Local layers keep plain RoPE at their own base.
			l.rope.Theta, l.rope.Freqs, mscale = c.RopeThetaLocal, nil, 1
			l.window = c.SlidingWindow
		}
		// YaRN scales both q and k by mscale after rotating; the logits
		// carry mscale², which the attention applies instead.
		l.scale = float32(scale * mscale * mscale)
		out[li] = l
	}
	m.ropes, m.ropeKey = out, key
	return out
}
