package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/quantmix"
	"github.com/graft-ml/graft/core/tensor"
)

func mergeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "merge",
		Short: "merge adapters into the base and save it as GGUF or Hugging Face safetensors",
		Long: "Merge adapters into the base model's weights and save the result: a .gguf file, or a\n" +
			"directory of Hugging Face safetensors with config.json and the tokenizer.",
		Example: `  graft merge --model models/stories260K/stories260K.gguf --adapter out/pip --out out/pip-merged.gguf
  graft merge --model M --adapter out/a --adapter out/b --out merged/ --dtype bf16
  graft merge --model M --adapter out/a --quantize q4_k_m --out merged-q4_k_m.gguf`,
	}
	fs := cmd.Flags()
	mf := addModelFlags(fs)
	mf.addAdapterFlag(fs)
	out := fs.String("out", "", "output `path`: a .gguf file, or a directory for Hugging Face safetensors")
	dtype := fs.String("dtype", "keep", "projection weights' type: keep (the base's, re-quantizing merged weights), f32, f16, bf16")
	asJSON := fs.Bool("json", false, "print one JSON object")
	fs.Lookup("quantize").Usage = "with a .gguf --out: write the merged model quantized, " + quantizeTypesHelp + "; nf4: quantize the base on load (QLoRA)"
	overwrite := addOverwriteFlag(fs)
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		if len(pos) > 0 {
			return usagef("unexpected arguments %q", pos)
		}
		if *out == "" {
			return usagef("--out is required")
		}
		if len(mf.adapters) == 0 {
			return usagef("--adapter is required")
		}
		if err := checkOutput(*out, *overwrite); err != nil {
			return err
		}
		opt := model.SaveOptions{Warn: func(msg string) { fmt.Fprintf(stderr, "graft merge: warning: %s\n", msg) }}
		switch strings.ToLower(*dtype) {
		case "keep":
		case "f32":
			opt.DType = tensor.F32
		case "f16":
			opt.DType = tensor.F16
		case "bf16":
			opt.DType = tensor.BF16
		default:
			return usagef("--dtype %q: want keep, f32, f16 or bf16", *dtype)
		}
		if mf.quantize != "" && mf.quantize != "nf4" {
			ft, err := quantmix.ParseFileType(mf.quantize)
			if err != nil {
				return usageError{err}
			}
			if !strings.HasSuffix(strings.ToLower(*out), ".gguf") {
				return usagef("--quantize %s writes GGUF: name --out .gguf", mf.quantize)
			}
			opt.Quantize, mf.quantize = ft, "" // the output's types, not the loaded base's
		}
		if len(mf.adapters) > 1 {
			// Merging several adapters adds each one's update in turn.
			fmt.Fprintf(stderr, "graft merge: merging %d adapters\n", len(mf.adapters))
		}
		adapters := mf.adapters
		mf.adapters = nil // load the plain base, then merge the adapters into it
		mf.stderr = stderr
		m, err := mf.load()
		if err != nil {
			return err
		}
		defer m.Free()
		if opt.Quantize != 0 {
			// The preset re-rounds every weight, the base's untouched
			// ones included: say so when they were quantized already.
			if err := checkRequantize(m, true, stderr); err != nil {
				return err
			}
		}
		mf.adapters = adapters
		loaded, err := mf.applyAdapters(m)
		if err != nil {
			return err
		}
		for i, a := range loaded {
			if err := a.Merge(); err != nil {
				return fmt.Errorf("%s: %w", adapters[i], err)
			}
		}
		format := "hf"
		if strings.HasSuffix(strings.ToLower(*out), ".gguf") {
			format = "gguf"
			err = m.SaveGGUF(*out, opt)
		} else {
			err = m.SaveHF(*out, opt)
		}
		if err != nil {
			return err
		}
		quantized := ""
		if opt.Quantize != 0 {
			quantized = opt.Quantize.String()
		}
		if *asJSON {
			return writeJSON(stdout, struct {
				Out      string `json:"out"`
				Format   string `json:"format"`
				Quantize string `json:"quantize,omitempty"`
			}{*out, format, quantized})
		}
		if quantized != "" {
			format += " " + quantized
		}
		fmt.Fprintf(stdout, "merged %d adapter(s) into %s (%s)\n", len(adapters), *out, format)
		return nil
	}
	return cmd
}
