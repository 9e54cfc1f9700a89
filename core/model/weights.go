package model

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
)

// tensorNames maps the parts of a decoder to the tensor names of one file
// layout. part is the Hugging Face suffix after model.layers.N.{self_attn,mlp}.
type tensorNames interface {
	embed() string
	outNorm() string
	output() string
	layer(i int, part string) string
}

// loadWeights uploads every weight of the decoder described by m.Config.
func (m *Model) loadWeights(ld *loader, has func(string) bool, names tensorNames) error {
	c := m.Config
	var err error
	if m.Embed, err = ld.load(names.embed(), c.Vocab, c.Dim); err != nil {
		return err
	}
	if m.OutNorm, err = ld.norm(names.outNorm(), c.Dim); err != nil {
		return err
	}
	m.Output = &Linear{Name: "lm_head", In: c.Dim, Out: c.Vocab, Weight: m.Embed}
	if !c.TiedOutput {
		if m.Output.Weight, err = ld.load(names.output(), c.Vocab, c.Dim); err != nil {
			return err
		}
	}
	m.Output.SourceDType = m.Output.Weight.DType()
	m.Layers = make([]Layer, c.Layers)
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, n := range m.layerNorms(l) {
			if *n.dst, err = ld.norm(names.layer(i, n.part), n.size); err != nil {
				return err
			}
		}
		linear := func(module string, out, in int, bias bool, ropeHeads int) (*Linear, error) {
			lin := &Linear{Name: hfName(i, module), In: in, Out: out}
			if c.RoPE == backend.RoPEInterleaved { // q/k rows in Meta's order
				lin.RoPEPermuted = ropeHeads
			}
			if lin.Weight, err = ld.load(names.layer(i, module+".weight"), out, in); err != nil {
				return nil, err
			}
			lin.SourceDType = lin.Weight.DType()
			if bias {
				if lin.Bias, err = ld.load(names.layer(i, module+".bias"), out); err != nil {
					return nil, err
				}
			} else if has(names.layer(i, module+".bias")) {
				return nil, fmt.Errorf("%s: %s has a bias the architecture %q does not use", ld.where, lin.Name, c.Arch)
			}
			return lin, nil
		}
		specs := []struct {
			dst       **Linear
			module    string
			out, in   int
			bias      bool
			ropeHeads int
		}{
			{&l.Q, "q_proj", c.QDim(), c.Dim, c.AttnBias, c.Heads},
			{&l.K, "k_proj", c.KVDim(), c.Dim, c.AttnBias, c.KVHeads},
			{&l.V, "v_proj", c.KVDim(), c.Dim, c.AttnBias, 0},
			{&l.O, "o_proj", c.Dim, c.QDim(), c.OutBias, 0},
			{&l.Gate, "gate_proj", c.FFN, c.Dim, false, 0},
			{&l.Up, "up_proj", c.FFN, c.Dim, false, 0},
			{&l.Down, "down_proj", c.Dim, c.FFN, false, 0},
		}
		for _, s := range specs {
			if *s.dst, err = linear(s.module, s.out, s.in, s.bias, s.ropeHeads); err != nil {
				return err
			}
		}
	}
	return nil
}

// layerNorm is one RMSNorm weight of a decoder block: where it goes, its
// Hugging Face name after model.layers.N. and its size.
type layerNorm struct {
	dst  *backend.Buffer
	part string
	size int
}

// layerNorms lists the norms of block l that the architecture has. With
// post-norms (Gemma) post_attention_layernorm is the attention's post-norm
// and pre_feedforward_layernorm the FFN's input norm; otherwise (Llama)
// post_attention_layernorm is the FFN's input norm.
func (m *Model) layerNorms(l *Layer) []layerNorm {
	c := m.Config
	out := []layerNorm{{&l.AttnNorm, "input_layernorm.weight", c.Dim}}
	if c.PostNorms {
		out = append(out,
			layerNorm{&l.PostAttnNorm, "post_attention_layernorm.weight", c.Dim},
			layerNorm{&l.FFNNorm, "pre_feedforward_layernorm.weight", c.Dim},
			layerNorm{&l.PostFFNNorm, "post_feedforward_layernorm.weight", c.Dim})
	} else {
		out = append(out, layerNorm{&l.FFNNorm, "post_attention_layernorm.weight", c.Dim})
	}
	if c.QKNorm {
		out = append(out, layerNorm{&l.QNorm, "q_norm.weight", c.HeadDim}, layerNorm{&l.KNorm, "k_norm.weight", c.HeadDim})
	}
	return out
}
