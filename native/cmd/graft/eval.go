package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
)

func evalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "score a JSONL dataset: loss and perplexity",
		Long: "Score a JSONL dataset, one {\"text\": ...} per line: the mean next-token loss over every\n" +
			"sequence, each truncated to --seq-len tokens (the model's context by default), and the perplexity.",
		Example: `  graft eval --model models/stories260K/stories260K.gguf --data examples/lora/data/eval.jsonl
  graft eval --model M --adapter out/pip --data held_out.jsonl --seq-len 256 --json`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	mf := addModelFlags(fs)
	mf.addAdapterFlag(fs)
	dataPath := fs.String("data", "", "JSONL `file`, one {\"text\": ...} per line")
	seqLen := fs.Int("seq-len", 0, "truncate each sequence to this many tokens (default: the model's context)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *dataPath == "" {
			return usagef("--data is required")
		}
		if *seqLen < 0 || *seqLen == 1 {
			return usagef("--seq-len must be ≥ 2 (or 0: the model's context), got %d", *seqLen)
		}
		return runEval(mf, *dataPath, *seqLen, *asJSON, cmd.OutOrStdout())
	}
	return cmd
}

func runEval(mf *modelFlags, dataPath string, seqLen int, asJSON bool, stdout io.Writer) error {
	recs, err := data.ReadJSONLFile(dataPath)
	if err != nil {
		return err
	}
	texts, err := data.Texts(recs, dataPath)
	if err != nil {
		return err
	}
	m, err := mf.load()
	if err != nil {
		return err
	}
	defer m.Free()
	if m.Tokenizer == nil {
		return fmt.Errorf("%s has no tokenizer", mf.path)
	}
	limit := m.Config.Context
	if seqLen > 0 && seqLen < limit {
		limit = seqLen
	}
	var total model.LossStats
	for i, text := range texts {
		ids := m.Tokenizer.Encode(text, true)
		if len(ids) > limit {
			ids = ids[:limit]
		}
		s, err := m.SequenceLoss(ids)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", dataPath, recs[i].Line, err)
		}
		total.Add(s)
	}
	if total.Tokens == 0 {
		return fmt.Errorf("%s: no sequence has two or more tokens to score", dataPath)
	}
	if asJSON {
		return writeJSON(stdout, struct {
			Loss       float64 `json:"loss"`
			Tokens     int     `json:"tokens"`
			Perplexity float64 `json:"perplexity"`
		}{total.Loss(), total.Tokens, total.Perplexity()})
	}
	fmt.Fprintf(stdout, "loss %.6f  perplexity %.4f  tokens %d  sequences %d\n", total.Loss(), total.Perplexity(), total.Tokens, len(texts))
	return nil
}
