package guest

import (
	"bytes"
	"fmt"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// loadModel replaces the instance's model (and drops its adapters) with
// the GGUF model in args.
func (p *Plugin) loadModel(args abi.LoadModelArgs) (abi.ModelInfo, error) {
	if len(args.GGUF) == 0 {
		return abi.ModelInfo{}, errorf(abi.CodeBadRequest, "gguf is empty")
	}
	name := args.Name
	if name == "" {
		name = "model.gguf"
	}
	switch {
	case args.Quantize != "" && args.Quantize != abi.QuantizeNF4:
		return abi.ModelInfo{}, errorf(abi.CodeBadRequest, "quantize %q: supported: %s", args.Quantize, abi.QuantizeNF4)
	case args.DoubleQuant && args.Quantize == "":
		return abi.ModelInfo{}, errorf(abi.CodeBadRequest, "double_quant needs quantize %q", abi.QuantizeNF4)
	}
	m, err := model.LoadGGUFReader(bytes.NewReader(args.GGUF), int64(len(args.GGUF)), name, newBackend())
	if err != nil {
		return abi.ModelInfo{}, err
	}
	if args.Quantize == abi.QuantizeNF4 {
		if err := model.QuantizeNF4(m, args.DoubleQuant); err != nil {
			m.Free()
			return abi.ModelInfo{}, err
		}
	}
	p.dropModel()
	p.m, p.modelName, p.quantized = m, name, args.Quantize
	return modelInfo(m, name, p.quantized), nil
}

// dropModel unloads every adapter and frees the model.
func (p *Plugin) dropModel() {
	for i := len(p.adapters) - 1; i >= 0; i-- {
		p.adapters[i].a.Unload() // the model goes too, so an error changes nothing
	}
	p.adapters = nil
	if p.m != nil {
		p.m.Free()
		p.m = nil
	}
}

func modelInfo(m *model.Model, name, quantized string) abi.ModelInfo {
	c := m.Config
	mi := abi.ModelInfo{
		Name: name, Arch: c.Arch, Vocab: c.Vocab, Dim: c.Dim, Layers: c.Layers,
		Heads: c.Heads, KVHeads: c.KVHeads, Context: c.Context, Params: c.NumParams(),
		BOS: -1, EOS: -1, Quantized: quantized,
	}
	if t := m.Tokenizer; t != nil {
		mi.HasVocab, mi.BOS, mi.EOS = true, t.BOS(), t.EOS()
	}
	return mi
}

// encodePrompt returns ids as given, or text encoded with BOS.
func encodePrompt(m *model.Model, text string, ids []int32, what string) ([]int32, error) {
	switch {
	case len(ids) > 0 && text != "":
		return nil, errorf(abi.CodeBadRequest, "%s: give text or token ids, not both", what)
	case len(ids) > 0:
		return ids, nil
	case m.Tokenizer == nil:
		return nil, errorf(abi.CodeBadRequest, "%s: the model has no tokenizer; give token ids", what)
	}
	out := m.Tokenizer.Encode(text, true)
	if len(out) == 0 {
		return nil, errorf(abi.CodeBadRequest, "%s: %q encodes to no tokens", what, text)
	}
	return out, nil
}

// checkSequence refuses a sequence that is empty, longer than limit
// tokens, or holds an id outside the model's vocabulary.
func checkSequence(m *model.Model, ids []int32, what string, limit int) error {
	if len(ids) == 0 || len(ids) > limit {
		return errorf(abi.CodeBadRequest, "%s has %d tokens, want 1 to %d (the model's context is %d)", what, len(ids), limit, m.Config.Context)
	}
	for j, id := range ids {
		if id < 0 || int(id) >= m.Config.Vocab {
			return errorf(abi.CodeBadRequest, "%s: token %d is id %d, outside the vocabulary of %d", what, j, id, m.Config.Vocab)
		}
	}
	return nil
}

// generate continues a prompt.
func (p *Plugin) generate(args abi.GenerateArgs) (abi.GenerateResult, error) {
	m, err := p.needModel()
	if err != nil {
		return abi.GenerateResult{}, err
	}
	prompt, err := encodePrompt(m, args.Prompt, args.PromptIDs, "prompt")
	if err != nil {
		return abi.GenerateResult{}, err
	}
	// The prompt and at least one new token must fit in the context: a
	// longer prompt is the request's fault, not a failure of the model.
	if err := checkSequence(m, prompt, "prompt", m.Config.Context-1); err != nil {
		return abi.GenerateResult{}, err
	}
	if args.MaxTokens < 0 {
		return abi.GenerateResult{}, errorf(abi.CodeBadRequest, "max_tokens %d must be >= 0", args.MaxTokens)
	}
	opt := model.GenerateOptions{
		Sampling:  model.Sampling{Temperature: args.Temperature, TopK: args.TopK, TopP: args.TopP, Seed: args.Seed},
		MaxTokens: args.MaxTokens,
		StopAtEOS: args.StopAtEOS,
		OnToken:   func(int32) error { return p.checkInterrupted() },
	}
	if err := opt.Sampling.Validate(); err != nil {
		return abi.GenerateResult{}, errorf(abi.CodeBadRequest, "%v", err)
	}
	ids, err := m.Generate(prompt, opt)
	if err != nil {
		return abi.GenerateResult{}, err
	}
	res := abi.GenerateResult{IDs: ids}
	if res.IDs == nil {
		res.IDs = []int32{}
	}
	if m.Tokenizer != nil {
		res.Text = m.Tokenizer.Decode(ids)
	}
	return res, nil
}

// eval scores sequences and, when asked, returns their logits.
func (p *Plugin) eval(args abi.EvalArgs) (abi.EvalResult, error) {
	m, err := p.needModel()
	if err != nil {
		return abi.EvalResult{}, err
	}
	var seqs [][]int32
	for i, text := range args.Texts {
		ids, err := encodePrompt(m, text, nil, fmt.Sprintf("texts[%d]", i))
		if err != nil {
			return abi.EvalResult{}, err
		}
		seqs = append(seqs, ids)
	}
	seqs = append(seqs, args.Sequences...)
	if len(seqs) == 0 {
		return abi.EvalResult{}, errorf(abi.CodeBadRequest, "no texts or sequences to evaluate")
	}
	var total model.LossStats
	var res abi.EvalResult
	for i, ids := range seqs {
		if err := p.checkInterrupted(); err != nil {
			return abi.EvalResult{}, err
		}
		if err := checkSequence(m, ids, fmt.Sprintf("sequence %d", i), m.Config.Context); err != nil {
			return abi.EvalResult{}, err
		}
		st, err := m.SequenceLoss(ids)
		if err != nil {
			return abi.EvalResult{}, fmt.Errorf("sequence %d: %w", i, err)
		}
		total.Add(st)
		if args.Logits {
			logits, err := allLogits(m, ids)
			if err != nil {
				return abi.EvalResult{}, fmt.Errorf("sequence %d: %w", i, err)
			}
			res.Logits = append(res.Logits, logits)
		}
	}
	res.SumNLL, res.Tokens = total.SumNLL, total.Tokens
	res.Loss, res.Perplexity = total.Loss(), total.Perplexity()
	return res, nil
}

// allLogits runs one pass over ids and returns every position's logits.
func allLogits(m *model.Model, ids []int32) ([]float32, error) {
	cache := m.NewCache(len(ids))
	defer m.FreeCache(cache)
	return m.Forward(cache, ids, true)
}
