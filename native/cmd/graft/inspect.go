package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/model"
)

func inspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect [PATH]",
		Short: "show a model's architecture, tensors and tokenizer",
		Long: "Show a model's format, architecture, dimensions, dtypes, tokenizer and tensor table. The model\n" +
			"is PATH or --model: a .gguf file or Hugging Face directory, a repo id in the local Hugging Face\n" +
			"cache, or an Ollama model pulled locally (see graft models).",
		Example: `  graft inspect models/stories260K/stories260K.gguf
  graft inspect --model Qwen/Qwen2.5-0.5B-Instruct --json`,
	}
	fs := cmd.Flags()
	modelPath := fs.String("model", "", "the model, instead of PATH: "+modelHelp)
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout := cmd.OutOrStdout()
		if *modelPath != "" {
			if len(pos) > 0 {
				return usagef("give the model once, as PATH or --model, not both (got --model %q and %q)", *modelPath, pos)
			}
			pos = []string{*modelPath}
		}
		if len(pos) != 1 {
			return usagef("want exactly one PATH (a .gguf file, a Hugging Face directory, or a model name graft models lists), got %d arguments", len(pos))
		}
		path, err := resolveModel(pos[0])
		if err != nil {
			return err
		}
		info, err := model.Inspect(path)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, info)
		}
		c := info.Config
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "path\t%s\n", info.Path)
		format := info.Format
		if info.Version > 0 {
			format = fmt.Sprintf("%s v%d", format, info.Version)
		}
		fmt.Fprintf(w, "format\t%s\n", format)
		fmt.Fprintf(w, "architecture\t%s\n", info.Architecture)
		fmt.Fprintf(w, "parameters\t%d\n", info.Params)
		fmt.Fprintf(w, "dims\thidden %d, ffn %d, layers %d, heads %d, kv heads %d, head dim %d\n", c.Dim, c.FFN, c.Layers, c.Heads, c.KVHeads, c.HeadDim)
		fmt.Fprintf(w, "vocab, context\t%d, %d\n", c.Vocab, c.Context)
		rope := "interleaved (Meta/GGUF)"
		if c.RoPE == 1 {
			rope = "rotate-half (Hugging Face)"
		}
		fmt.Fprintf(w, "rope\t%s, theta %g\n", rope, c.RopeTheta)
		fmt.Fprintf(w, "norm eps\t%g\n", c.NormEps)
		fmt.Fprintf(w, "output\ttied %v\n", c.TiedOutput)
		var dts []string
		for k, v := range info.DTypes {
			dts = append(dts, fmt.Sprintf("%s x%d", k, v))
		}
		sort.Strings(dts)
		fmt.Fprintf(w, "dtypes\t%s\n", strings.Join(dts, ", "))
		if t := info.Tokenizer; t != nil {
			fmt.Fprintf(w, "tokenizer\t%s, vocab %d, bos %d, eos %d\n", t.Kind, t.Vocab, t.BOS, t.EOS)
		} else {
			fmt.Fprintf(w, "tokenizer\tnone\n")
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "tensor\tshape\tdtype\tbytes")
		for _, t := range info.Tensors {
			fmt.Fprintf(w, "%s\t%v\t%s\t%d\n", t.Name, t.Shape, t.DType, t.Bytes)
		}
		return w.Flush()
	}
	return cmd
}
