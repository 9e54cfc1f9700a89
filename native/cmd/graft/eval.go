package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/train"
)

func evalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "score held-out data: loss and perplexity, as graft train's eval losses",
		Long: "Score held-out data as graft train scores its --eval data: the same data shapes (.jsonl text,\n" +
			"prompt/completion, messages or Alpaca records, .json, .txt), EOS appended, rows of --seq-len\n" +
			"positions (one example per row, truncated, or --pack), the token-mean next-token loss; the\n" +
			"perplexity is its exp. Given graft train's --seq-len and --pack, the numbers equal its eval losses.",
		Example: `  graft eval --model models/stories260K/stories260K.gguf --data examples/lora/data/eval.jsonl
  graft eval --model M --adapter out/pip --data held_out.jsonl --seq-len 64 --pack --json`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	mf := addModelFlags(fs)
	mf.addAdapterFlag(fs)
	var spec train.Spec
	fs.StringVar(&spec.Eval, "data", "", "held-out data `file`, read as graft train reads --eval: .jsonl records (text, prompt/completion, messages, Alpaca), .json, .txt")
	fs.IntVar(&spec.SeqLen, "seq-len", 0, fmt.Sprintf("positions per row, as graft train's --seq-len (default %d, at most the model's context less the virtual tokens)", train.DefaultSeqLen))
	fs.BoolVar(&spec.Pack, "pack", false, "pack the examples into full rows, as graft train --pack (default: one example per row, truncated to it)")
	fs.IntVar(&spec.Batch, "batch", 0, fmt.Sprintf("rows per forward pass (default %d; the loss does not depend on it)", train.DefaultBatch))
	fs.StringVar(&spec.ChatTemplate, "chat-template", "", chatTemplateHelp)
	fs.Var(templateVars{&spec.ChatTemplateVars}, "chat-template-var", chatTemplateVarHelp)
	fs.BoolVar(&spec.AllowInvalidUTF8, "allow-invalid-utf8", false, "read bytes that are not UTF-8 as U+FFFD, with a warning (default: an error)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		switch {
		case spec.Eval == "":
			return usagef("--data is required")
		case spec.SeqLen < 0 || spec.SeqLen == 1:
			return usagef("--seq-len must be ≥ 2 (or 0: %d, capped to the model's context), got %d", train.DefaultSeqLen, spec.SeqLen)
		case spec.Batch < 0:
			return usagef("--batch must be ≥ 1 (or 0: %d), got %d", train.DefaultBatch, spec.Batch)
		}
		return runEval(mf, spec, *asJSON, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

func runEval(mf *modelFlags, spec train.Spec, asJSON bool, stdout, stderr io.Writer) error {
	mf.stderr = stderr
	m, err := mf.load()
	if err != nil {
		return err
	}
	defer m.Free()
	// The same evaluation as graft train's eval losses: the same data
	// reading, rows and token-mean loss.
	r, err := train.Evaluate(m, spec, func(msg string) { fmt.Fprintf(stderr, "graft eval: warning: %s\n", msg) })
	if err != nil {
		if errors.Is(err, train.ErrInvalidSpec) {
			return usageError{err}
		}
		return err
	}
	if asJSON {
		return writeJSON(stdout, struct {
			Loss       float64 `json:"loss"`
			Tokens     int     `json:"tokens"`
			Perplexity float64 `json:"perplexity"`
			Examples   int     `json:"examples"`
			SeqLen     int     `json:"seq_len"`
			Pack       bool    `json:"pack"`
		}{r.Loss, r.Tokens, r.Perplexity(), r.Examples, r.SeqLen, r.Pack})
	}
	fmt.Fprintf(stdout, "loss %.6f  perplexity %.4f  tokens %d  examples %d  [%s]\n", r.Loss, r.Perplexity(), r.Tokens, r.Examples, r.Settings())
	return nil
}
