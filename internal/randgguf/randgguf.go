// Package randgguf writes random-weight Llama GGUF models: the benchmarks'
// stand-ins for real checkpoints, and the vehicles that carry a test
// vocabulary into llama.cpp, which loads only whole models.
package randgguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tensor"
)

// Shape is the architecture of a random-init Llama.
type Shape struct {
	Name                       string
	Dim, FFN, Layers           int
	Heads, KVHeads, Vocab, Ctx int
	NormEps, RopeTheta         float32
}

// HeadDim is the width of one attention head.
func (s Shape) HeadDim() int { return s.Dim / s.Heads }

// Llama returns the GGUF metadata and F32 tensors of a llama model of
// shape s with the tokenizer metadata tokenizerKVs (whose vocabulary must
// have s.Vocab tokens): matrices drawn from N(0, 0.02²) with a generator
// seeded by seed, norm weights 1, and an untied output head.
func Llama(s Shape, seed uint64, tokenizerKVs []gguf.KV) ([]gguf.KV, []*tensor.Tensor, error) {
	if s.Heads <= 0 || s.KVHeads <= 0 || s.Dim%s.Heads != 0 || s.Heads%s.KVHeads != 0 {
		return nil, nil, fmt.Errorf("shape %+v: dim must split into heads and heads into kv heads", s)
	}
	if s.Vocab <= 0 || s.FFN <= 0 || s.Layers <= 0 || s.Ctx <= 0 {
		return nil, nil, fmt.Errorf("shape %+v: vocab, ffn, layers and context must be positive", s)
	}
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "general.name", Value: s.Name},
		{Key: "general.file_type", Value: uint32(0)}, // all F32
		{Key: "llama.context_length", Value: uint32(s.Ctx)},
		{Key: "llama.embedding_length", Value: uint32(s.Dim)},
		{Key: "llama.block_count", Value: uint32(s.Layers)},
		{Key: "llama.feed_forward_length", Value: uint32(s.FFN)},
		{Key: "llama.rope.dimension_count", Value: uint32(s.HeadDim())},
		{Key: "llama.attention.head_count", Value: uint32(s.Heads)},
		{Key: "llama.attention.head_count_kv", Value: uint32(s.KVHeads)},
		{Key: "llama.attention.layer_norm_rms_epsilon", Value: s.NormEps},
		{Key: "llama.rope.freq_base", Value: s.RopeTheta},
		{Key: "llama.vocab_size", Value: uint32(s.Vocab)},
	}
	kvs = append(kvs, tokenizerKVs...)

	r := rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	var tensors []*tensor.Tensor
	add := func(name string, fill func() float32, dims ...int) error {
		t, err := filledTensor(name, fill, dims...)
		tensors = append(tensors, t)
		return err
	}
	normal := func() float32 { return float32(r.NormFloat64() * 0.02) }
	one := func() float32 { return 1 }
	q, kv := s.Heads*s.HeadDim(), s.KVHeads*s.HeadDim()
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

// WriteLlama writes Llama(s, seed, tokenizerKVs) to path.
func WriteLlama(path string, s Shape, seed uint64, tokenizerKVs []gguf.KV) error {
	kvs, tensors, err := Llama(s, seed, tokenizerKVs)
	if err != nil {
		return fmt.Errorf("random model %s: %w", path, err)
	}
	return gguf.WriteFile(path, kvs, tensors)
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
