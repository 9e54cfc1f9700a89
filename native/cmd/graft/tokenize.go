package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/model"
)

func tokenizeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tokenize",
		Short:   "print the token ids of a text",
		Example: `  graft tokenize --model models/stories260K/stories260K.gguf --text "Hello" --json`,
	}
	fs := cmd.Flags()
	modelPath := fs.String("model", "", "the model: "+modelHelp)
	text := fs.String("text", "", "text to tokenize")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout := cmd.OutOrStdout()
		if len(pos) > 0 {
			return usagef("unexpected arguments %q", pos)
		}
		if *modelPath == "" {
			return usagef("--model is required")
		}
		path, err := resolveModel(*modelPath)
		if err != nil {
			return err
		}
		tok, err := model.LoadTokenizer(path)
		if err != nil {
			return err
		}
		ids := tok.Encode(*text, true)
		if *asJSON {
			return writeJSON(stdout, struct {
				IDs []int32 `json:"ids"`
			}{nonNil(ids)})
		}
		for _, id := range ids {
			fmt.Fprintf(stdout, "%6d  %q\n", id, tok.TokenString(id))
		}
		return nil
	}
	return cmd
}
