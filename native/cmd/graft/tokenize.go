package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/graft-ml/graft/core/model"
)

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	modelPath := fs.String("model", "", "the model: "+modelHelp)
	text := fs.String("text", "", "text to tokenize")
	asJSON := fs.Bool("json", false, "print one JSON object")
	pos, err := parseFlags(fs, args, stderr)
	if err != nil {
		return err
	}
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
