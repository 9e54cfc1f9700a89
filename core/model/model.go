package model

import (
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tokenizer"
)

// Model is a Llama-family decoder whose weights live on a backend.
type Model struct {
	Config    Config
	Backend   backend.Backend
	Tokenizer tokenizer.Tokenizer // nil when the source had none

	Embed   backend.Buffer // [Vocab, Dim]
	OutNorm backend.Buffer // [Dim]
	Output  *Linear        // lm_head; its Weight is Embed when tied
	Layers  []Layer

	// Source describes where the weights came from ("gguf" or "hf") and
	// SourcePath the file or directory.
	Source, SourcePath string
	// WeightDTypes counts the base weights by storage type, for reports.
	WeightDTypes map[string]int
	// SourceMetadata is the GGUF metadata of a model loaded from GGUF
	// (tokenizer included), written back when the model is saved as GGUF.
	SourceMetadata []gguf.KV

	// Prompt and Prefix, when set, add virtual tokens (prompt tuning) or
	// key/value prefixes (prefix tuning) to every sequence.
	Prompt PromptHook
	Prefix PrefixHook

	// Checkpointing trades compute for memory in training: the forward
	// keeps only each decoder block's input, and each block's forward runs
	// again just before its backward, in one activation set shared by all
	// blocks. Activation memory drops from Layers full sets to Layers rows
	// of Dim plus one set, for about a third more compute per step.
	// Gradients are unchanged (see ForwardReplayer for random hooks).
	Checkpointing bool
	// LogitChunkRows is how many rows of logits training computes at a
	// time; 0 picks 128 rows or 16 MiB of logits, whichever is more. The loss and gradients do not
	// depend on it beyond float rounding.
	LogitChunkRows int

	train   *trainPass  // activation workspace reused across training steps
	ropes   []layerRoPE // per layer, computed on first use (ropeLayers)
	ropeKey ropeKey     // what ropes were computed from
}

// Linears returns every projection of the decoder blocks in order (not the
// output head), the set PEFT's "all-linear" refers to.
func (m *Model) Linears() []*Linear {
	var out []*Linear
	for i := range m.Layers {
		out = append(out, m.Layers[i].Linears()...)
	}
	return out
}

// Linear finds a projection by its Hugging Face module name, including
// "lm_head".
func (m *Model) Linear(name string) (*Linear, bool) {
	if m.Output != nil && m.Output.Name == name {
		return m.Output, true
	}
	for _, l := range m.Linears() {
		if l.Name == name {
			return l, true
		}
	}
	return nil, false
}

// Free releases the model's buffers on its backend.
func (m *Model) Free() {
	b := m.Backend
	free := func(buf backend.Buffer) {
		if buf != nil {
			b.Free(buf)
		}
	}
	m.FreeTrainingState()
	free(m.Embed)
	free(m.OutNorm)
	if m.Output != nil && !m.Config.TiedOutput {
		free(m.Output.Weight)
	}
	for _, l := range m.Layers {
		for _, n := range m.layerNorms(&l) {
			free(*n.dst)
		}
		for _, lin := range l.Linears() {
			free(lin.Weight)
			free(lin.Bias)
		}
	}
	m.Layers = nil
}

// attention returns layer li's attention parameters for a pass of batch x
// seqQ query rows against seqK keys per sequence with the given row
// stride.
func (m *Model) attention(li, batch, seqQ, seqK, stride int) backend.Attention {
	c, l := m.Config, m.ropeLayers()[li]
	return backend.Attention{
		Batch: batch, SeqQ: seqQ, SeqK: seqK, KVStride: stride,
		Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim,
		Scale: l.scale, Window: l.window,
	}
}

// rope returns layer li's rotary embedding.
func (m *Model) rope(li int) backend.RoPE { return m.ropeLayers()[li].rope }

// checkIDs rejects token ids outside the vocabulary.
func (m *Model) checkIDs(ids []int32) error {
	for i, id := range ids {
		if id < 0 || int(id) >= m.Config.Vocab {
			return fmt.Errorf("token %d at position %d is outside the vocabulary of %d", id, i, m.Config.Vocab)
		}
	}
	return nil
}
