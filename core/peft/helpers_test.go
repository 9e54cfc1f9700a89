package peft

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

const (
	storiesGGUF = "../../models/stories260K/stories260K.gguf"
	storiesQ8   = "../../models/stories260K/stories260K-q8_0-v2.gguf"
)

// storyIDs is a fixed token sequence for comparing logits.
var storyIDs = []int32{1, 403, 407, 261, 378, 430, 269, 343, 260, 378, 285, 292, 416, 11, 295, 260}

func loadModel(t testing.TB, path string) *model.Model {
	t.Helper()
	m, err := model.Load(path, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

func logits(t testing.TB, m *model.Model, ids []int32) []float32 {
	t.Helper()
	out, err := m.Forward(m.NewCache(len(ids)), ids, true)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// relDiff returns max|a-b| / max|b|.
func relDiff(a, b []float32) float64 {
	var diff, scale float64
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	if scale == 0 {
		return diff
	}
	return diff / scale
}

func seeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

func randVals(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((2*rng.Float64() - 1) * scale)
	}
	return v
}

func loadF32(t testing.TB, b backend.Backend, vals []float32, shape ...int) backend.Buffer {
	t.Helper()
	tt, err := tensor.FromFloat32("w", shape, vals)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := b.Load(tt)
	if err != nil {
		t.Fatal(err)
	}
	return buf
}

func read(t testing.TB, b backend.Backend, buf backend.Buffer) []float32 {
	t.Helper()
	out, err := readAll(b, buf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tinyModel builds a random two-layer Llama with Meta-order q/k rows, GQA
// and a tied output head, small enough for exhaustive checks.
func tinyModel(t testing.TB, seed uint64) *model.Model {
	t.Helper()
	b := cpu.New()
	c := model.Config{Arch: "llama", Dim: 16, FFN: 24, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 4,
		Vocab: 32, Context: 64, NormEps: 1e-5, RopeTheta: 10000, RoPE: backend.RoPEInterleaved, TiedOutput: true}
	rng := seeded(seed)
	m := &model.Model{Config: c, Backend: b, Source: "test"}
	m.Embed = loadF32(t, b, randVals(rng, c.Vocab*c.Dim, 1), c.Vocab, c.Dim)
	ones := func() backend.Buffer {
		v := randVals(rng, c.Dim, 0.1)
		for i := range v {
			v[i] += 1
		}
		return loadF32(t, b, v, c.Dim)
	}
	m.OutNorm = ones()
	m.Output = &model.Linear{Name: "lm_head", In: c.Dim, Out: c.Vocab, Weight: m.Embed}
	lin := func(i int, block, name string, out, in, heads int) *model.Linear {
		return &model.Linear{Name: fmt.Sprintf("model.layers.%d.%s.%s", i, block, name), In: in, Out: out,
			Weight: loadF32(t, b, randVals(rng, out*in, 1/math.Sqrt(float64(in))), out, in), RoPEPermuted: heads}
	}
	m.Layers = make([]model.Layer, c.Layers)
	for i := range m.Layers {
		l := &m.Layers[i]
		l.AttnNorm, l.FFNNorm = ones(), ones()
		l.Q = lin(i, "self_attn", "q_proj", c.QDim(), c.Dim, c.Heads)
		l.K = lin(i, "self_attn", "k_proj", c.KVDim(), c.Dim, c.KVHeads)
		l.V = lin(i, "self_attn", "v_proj", c.KVDim(), c.Dim, 0)
		l.O = lin(i, "self_attn", "o_proj", c.Dim, c.QDim(), 0)
		l.Gate = lin(i, "mlp", "gate_proj", c.FFN, c.Dim, 0)
		l.Up = lin(i, "mlp", "up_proj", c.FFN, c.Dim, 0)
		l.Down = lin(i, "mlp", "down_proj", c.Dim, c.FFN, 0)
	}
	t.Cleanup(m.Free)
	return m
}

var tinyIDs = []int32{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}

// attach returns a manager with one adapter "a" of random A and B on the
// given targets.
func attach(t testing.TB, m *model.Model, cfg LoraConfig, seed uint64) *Manager {
	t.Helper()
	mg := AttachLoRA(m)
	if cfg.InitLoraWeights == InitDefault {
		cfg.InitLoraWeights = InitRandom
	}
	if err := mg.AddAdapter("a", cfg, seeded(seed)); err != nil {
		t.Fatal(err)
	}
	return mg
}
