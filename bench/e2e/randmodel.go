package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// shape is the architecture of a random-init Llama written as GGUF.
type shape struct {
	Name                       string
	Dim, FFN, Layers           int
	Heads, KVHeads, Vocab, Ctx int
	NormEps, RopeTheta         float32
}

// smol135m is SmolLM-135M's architecture (untied output head here, so the
// training workload matches bench/torch_lora.py's smol135m preset).
var smol135m = shape{
	Name: "smol135m-random", Dim: 576, FFN: 1536, Layers: 30, Heads: 9, KVHeads: 3,
	Vocab: 49152, Ctx: 2048, NormEps: 1e-5, RopeTheta: 10000,
}

func (s shape) headDim() int { return s.Dim / s.Heads }

// matches reports whether an inspected file has this shape, so a cached
// file written by an older harness with other dimensions is rewritten.
func (s shape) matches(info *model.Info) bool {
	c := info.Config
	return c.Dim == s.Dim && c.FFN == s.FFN && c.Layers == s.Layers && c.Heads == s.Heads &&
		c.KVHeads == s.KVHeads && c.Vocab == s.Vocab && c.Context == s.Ctx && !c.TiedOutput &&
		info.Tokenizer != nil && info.Tokenizer.Vocab == s.Vocab
}

// ensureRandomModel returns path, writing the random model there first
// unless a file of the right shape is already present.
func ensureRandomModel(path string, s shape, seed uint64, logf func(string, ...any)) error {
	if info, err := model.Inspect(path); err == nil && s.matches(info) {
		return nil
	} else if err == nil {
		logf("%s has another shape; rewriting it", path)
	}
	logf("writing %s (random init, F32, seed %d)", path, seed)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("random model: %w", err)
	}
	kvs, tensors, err := randomModel(s, seed)
	if err != nil {
		return fmt.Errorf("random model %s: %w", path, err)
	}
	return gguf.WriteFile(path, kvs, tensors)
}

// randomModel returns the GGUF metadata and F32 tensors of a llama model of
// shape s: matrices drawn from N(0, 0.02²), norm weights 1, and a synthetic
// SentencePiece vocabulary.
func randomModel(s shape, seed uint64) ([]gguf.KV, []*tensor.Tensor, error) {
	if s.Heads <= 0 || s.KVHeads <= 0 || s.Dim%s.Heads != 0 || s.Heads%s.KVHeads != 0 {
		return nil, nil, fmt.Errorf("shape %+v: dim must split into heads and heads into kv heads", s)
	}
	vocab, err := syntheticVocab(s.Vocab)
	if err != nil {
		return nil, nil, err
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: s.Name},
		{Key: "general.file_type", Value: uint32(0)}, // all F32
		{Key: "llama.context_length", Value: uint32(s.Ctx)},
		{Key: "llama.embedding_length", Value: uint32(s.Dim)},
		{Key: "llama.block_count", Value: uint32(s.Layers)},
		{Key: "llama.feed_forward_length", Value: uint32(s.FFN)},
		{Key: "llama.rope.dimension_count", Value: uint32(s.headDim())},
		{Key: "llama.attention.head_count", Value: uint32(s.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(s.KVHeads)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: s.NormEps},
		{Key: "llama.rope.freq_base", Value: s.RopeTheta},
		{Key: "llama.vocab_size", Value: uint32(s.Vocab)},
	}
	kvs = append(kvs, vocab.kvs()...)

	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	var tensors []*tensor.Tensor
	add := func(name string, fill func() float32, dims ...int) error {
		t, err := filledTensor(name, fill, dims...)
		tensors = append(tensors, t)
		return err
	}
	normal := func() float32 { return float32(r.NormFloat64() * 0.02) }
	one := func() float32 { return 1 }
	q, kv := s.Heads*s.headDim(), s.KVHeads*s.headDim()
	if err := add("token_embd.weight", normal, s.Vocab, s.Dim); err != nil {
		return nil, nil, err
	}
	for i := range s.Layers {
		for _, t := range []struct {
			name string
			fill func() float32
			dims []int
		}{
			{"attn_norm.weight", one, []int{s.Dim}},
			{"attn_q.weight", normal, []int{q, s.Dim}},
			{"attn_k.weight", normal, []int{kv, s.Dim}},
			{"attn_v.weight", normal, []int{kv, s.Dim}},
			{"attn_output.weight", normal, []int{s.Dim, q}},
			{"ffn_norm.weight", one, []int{s.Dim}},
			{"ffn_gate.weight", normal, []int{s.FFN, s.Dim}},
			{"ffn_up.weight", normal, []int{s.FFN, s.Dim}},
			{"ffn_down.weight", normal, []int{s.Dim, s.FFN}},
		} {
			if err := add(fmt.Sprintf("blk.%d.%s", i, t.name), t.fill, t.dims...); err != nil {
				return nil, nil, err
			}
		}
	}
	if err := add("output_norm.weight", one, s.Dim); err != nil {
		return nil, nil, err
	}
	if err := add("output.weight", normal, s.Vocab, s.Dim); err != nil {
		return nil, nil, err
	}
	return kvs, tensors, nil
}

// filledTensor encodes fill's values straight into an F32 tensor's bytes,
// so the largest tensor is held once rather than as floats and bytes.
func filledTensor(name string, fill func() float32, dims ...int) (*tensor.Tensor, error) {
	n := tensor.Shape(dims).Numel()
	data := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(fill()))
	}
	return tensor.New(name, tensor.F32, tensor.Shape(dims), data)
}
