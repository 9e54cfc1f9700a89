package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tokenizer"
)

func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	mf := addModelFlags(fs)
	mf.addAdapterFlag(fs)
	prompt := fs.String("prompt", "", "prompt text (BOS is prepended)")
	maxTokens := fs.Int("max-tokens", 128, "new tokens at most")
	temperature := fs.Float64("temperature", 0.8, "sampling temperature; 0 is greedy")
	topK := fs.Int("top-k", 40, "sample from the K most likely tokens; 0 disables")
	topP := fs.Float64("top-p", 0.95, "sample from the smallest set with this total probability; 1 disables")
	seed := fs.Uint64("seed", 0, "random seed")
	ignoreEOS := fs.Bool("ignore-eos", false, "keep generating past the end-of-sequence token")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if *maxTokens < 0 {
		return usagef("--max-tokens %d must be >= 0", *maxTokens)
	}
	sampling := model.Sampling{Temperature: float32(*temperature), TopK: *topK, TopP: float32(*topP), Seed: *seed}
	if err := sampling.Validate(); err != nil {
		return usageError{err}
	}
	m, err := mf.load()
	if err != nil {
		return err
	}
	defer m.Free()
	if m.Tokenizer == nil {
		return fmt.Errorf("%s has no tokenizer", mf.path)
	}
	ids := m.Tokenizer.Encode(*prompt, true)
	if len(ids) == 0 {
		return fmt.Errorf("the prompt encodes to no tokens and the tokenizer has no BOS token")
	}
	opt := model.GenerateOptions{Sampling: sampling, MaxTokens: *maxTokens, StopAtEOS: !*ignoreEOS}
	if *maxTokens == 0 {
		opt.MaxTokens = -1 // nothing to generate
	}
	if !*asJSON {
		// The prompt goes through the same decoder so that the first new
		// token's leading space is kept after it.
		stream := tokenizer.NewStreamDecoder(m.Tokenizer)
		for _, id := range ids {
			io.WriteString(stdout, stream.Push(id))
		}
		opt.OnToken = func(id int32) error {
			_, err := io.WriteString(stdout, stream.Push(id))
			return err
		}
		defer func() { fmt.Fprintln(stdout, stream.Flush()) }()
	}
	var out []int32
	if opt.MaxTokens >= 0 {
		if out, err = m.Generate(ids, opt); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		}{m.Tokenizer.Decode(out), nonNil(out)})
	}
	return nil
}
