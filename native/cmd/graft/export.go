package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// Export formats.
const (
	formatGGUFLoRA = "gguf-lora"
	formatMsgpack  = "msgpack"
)

func exportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "export an adapter as a GGUF LoRA for llama.cpp, an Ollama model directory or a msgpack bundle",
		Long: "Export an adapter: as a GGUF LoRA adapter that llama.cpp loads (--lora), for the base model\n" +
			"--model names; as a directory for Ollama (the GGUF LoRA and a Modelfile with FROM the base,\n" +
			"ADAPTER, TEMPLATE from the base's chat template and its stop markers: then\n" +
			"ollama create NAME -f DIR/Modelfile); or as graft's one-file msgpack bundle.",
		Example: `  graft export --adapter out/pip --format gguf-lora --model models/stories260K/stories260K.gguf --out pip-lora.gguf
  graft export --adapter out/chat --format ollama --model Qwen/Qwen2.5-0.5B-Instruct --out out/chat-ollama
  graft export --adapter out/pip --out pip.msgpack`,
	}
	fs := cmd.Flags()
	adapter := fs.String("adapter", "", "adapter `path`: a PEFT adapter directory or a .msgpack bundle")
	format := fs.String("format", "", "output format: gguf-lora (llama.cpp's LoRA adapter), ollama (a directory with the GGUF LoRA and a Modelfile) or msgpack (graft's one-file bundle); default: from --out's extension")
	out := fs.String("out", "", "output `file` (a directory for ollama)")
	base := fs.String("model", "", "base model, needed for gguf-lora and ollama (its architecture, head counts and tensor shapes; ollama's FROM): "+modelHelp)
	asJSON := fs.Bool("json", false, "print one JSON object")
	overwrite := addOverwriteFlag(fs)
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		switch {
		case len(pos) > 0:
			return usagef("unexpected arguments %q", pos)
		case *adapter == "":
			return usagef("--adapter is required")
		case *out == "":
			return usagef("--out is required")
		}
		if *format == "" {
			switch lower := strings.ToLower(*out); {
			case strings.HasSuffix(lower, ".gguf"):
				*format = formatGGUFLoRA
			case strings.HasSuffix(lower, ".msgpack"):
				*format = formatMsgpack
			default:
				return usagef("--format is required when --out ends in neither .gguf nor .msgpack")
			}
		}
		if *format == formatOllama && *base == "" {
			return usagef("--model is required for %s: the Modelfile's FROM and the LoRA's shapes come from the base", formatOllama)
		}
		if err := checkOutput(*out, *overwrite); err != nil {
			return err
		}
		src, err := peft.OpenAdapterPath(*adapter)
		if err != nil {
			return err
		}
		var tensors int
		switch *format {
		case formatGGUFLoRA:
			if *base == "" {
				return usagef("--model is required for %s: the export needs the base's architecture and head counts (llama.cpp's q/k rows are permuted per head)", formatGGUFLoRA)
			}
			if tensors, err = exportGGUFLoRA(src, *base, *out, stderr); err != nil {
				return err
			}
		case formatOllama:
			res, err := exportOllama(src, *base, *out, stderr)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(stdout, res)
			}
			fmt.Fprintf(stdout, "exported %s to %s (GGUF LoRA, %d tensors) and %s (FROM %s", *adapter, res.Adapter, res.Tensors, res.Modelfile, res.From)
			if res.Template != "" {
				fmt.Fprintf(stdout, ", TEMPLATE for %s", res.Template)
			}
			fmt.Fprintf(stdout, ")\nrun: ollama create NAME -f %s && ollama run NAME\n", res.Modelfile)
			return nil
		case formatMsgpack:
			files, err := peft.ReadFiles(src)
			if err != nil {
				return err
			}
			if err := peft.WriteBundle(*out, files); err != nil {
				return err
			}
		default:
			return usagef("--format %q: want %s, %s or %s", *format, formatGGUFLoRA, formatOllama, formatMsgpack)
		}
		st, err := os.Stat(*out)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(stdout, struct {
				Out     string `json:"out"`
				Format  string `json:"format"`
				Bytes   int64  `json:"bytes"`
				Tensors int    `json:"tensors,omitempty"`
			}{*out, *format, st.Size(), tensors})
		}
		fmt.Fprintf(stdout, "exported %s to %s (%s, %d bytes)\n", *adapter, *out, *format, st.Size())
		return nil
	}
	return cmd
}

// exportGGUFLoRA converts the adapter for the base at basePath and writes
// it; it returns the number of tensors written.
func exportGGUFLoRA(src peft.Source, basePath, out string, stderr io.Writer) (int, error) {
	basePath, err := resolveModel(basePath)
	if err != nil {
		return 0, err
	}
	base, err := ggufBase(basePath)
	if err != nil {
		return 0, err
	}
	exp, err := peft.ConvertGGUFLoRA(src, base)
	if err != nil {
		return 0, err
	}
	for _, w := range exp.Warnings {
		fmt.Fprintf(stderr, "graft export: warning: %s\n", w)
	}
	return len(exp.Tensors), exp.WriteFile(out)
}

// ggufBase describes the base model: from a GGUF header alone, or by
// loading a Hugging Face directory.
func ggufBase(path string) (peft.GGUFBase, error) {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		f, err := gguf.Open(path)
		if err != nil {
			return peft.GGUFBase{}, err
		}
		defer f.Close()
		return peft.GGUFBaseOfFile(f)
	}
	m, err := model.Load(path, cpu.New())
	if err != nil {
		return peft.GGUFBase{}, err
	}
	defer m.Free()
	return peft.GGUFBaseOf(m), nil
}
