package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/quantmix"
	"github.com/graft-ml/graft/core/tensor"
)

const quantizeTypesHelp = "q4_k_m, q5_k_m, q6_k, q8_0 or q4_0 (also q4_k_s, q5_k_s, q4_1, q5_0, q5_1), llama.cpp's presets with its per-tensor types"

// quantizeCmd is `graft quantize --type T IN OUT.gguf`: the model at IN
// (GGUF, Hugging Face directory or a model name) written as a GGUF whose
// tensors have the types llama.cpp's quantize tool would give them.
func quantizeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quantize --type TYPE IN OUT.gguf",
		Short: "write a model as a GGUF quantized like llama.cpp's presets (q4_k_m, q5_k_m, q6_k, q8_0, q4_0)",
		Long: "Write the model IN (a .gguf file or Hugging Face directory, a repo id in the local Hugging Face\n" +
			"cache, or an Ollama model) as OUT.gguf with llama.cpp's quantization preset TYPE: each tensor\n" +
			"gets the type llama.cpp's quantize tool gives it (Q4_K_M: Q6_K on the output head and on attn_v\n" +
			"and ffn_down of some layers, Q4_K elsewhere; norms stay F32), and general.file_type says TYPE.",
		Example: `  graft quantize --type q4_k_m Qwen/Qwen2.5-0.5B-Instruct qwen-q4_k_m.gguf
  graft quantize --type q8_0 model-f16.gguf model-q8_0.gguf`,
	}
	fs := cmd.Flags()
	typ := fs.String("type", "", "the preset: "+quantizeTypesHelp)
	overwrite := fs.Bool("overwrite", false, "replace OUT if it exists")
	requant := fs.Bool("allow-requantize", false, "quantize weights that are already quantized (Q8_0, Q4_0...), which compounds the rounding; llama.cpp refuses without the same flag")
	device := fs.String("device", "cpu", deviceHelp)
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		if len(pos) != 2 {
			return usagef("want IN and OUT.gguf, got %d arguments", len(pos))
		}
		in, out := pos[0], pos[1]
		if *typ == "" {
			return usagef("--type is required: %s", quantizeTypesHelp)
		}
		ft, err := quantmix.ParseFileType(*typ)
		if err != nil {
			return usageError{err}
		}
		if !strings.HasSuffix(strings.ToLower(out), ".gguf") {
			return usagef("OUT %q: quantized models are written as GGUF; name it .gguf", out)
		}
		if err := checkOutput(out, *overwrite); err != nil {
			return err
		}
		mf := &modelFlags{path: in, device: *device}
		m, err := mf.load()
		if err != nil {
			return err
		}
		defer m.Free()
		if err := checkRequantize(m, *requant, stderr); err != nil {
			return err
		}
		opt := model.SaveOptions{Quantize: ft, Warn: func(msg string) { fmt.Fprintf(stderr, "graft quantize: warning: %s\n", msg) }}
		if err := m.SaveGGUF(out, opt); err != nil {
			return err
		}
		return reportQuantized(stdout, out, ft, *asJSON)
	}
	return cmd
}

// checkRequantize refuses, unless allowed, a base whose projections are
// already quantized: their values are the old rounding, which the new
// quantization rounds again.
func checkRequantize(m *model.Model, allow bool, stderr io.Writer) error {
	var quantized []string
	for dt, n := range m.WeightDTypes {
		if d, err := tensor.ParseDType(dt); err == nil && d.Quantized() {
			quantized = append(quantized, fmt.Sprintf("%d %s", n, dt))
		}
	}
	if len(quantized) == 0 {
		return nil
	}
	msg := fmt.Sprintf("the model's weights are already quantized (%s)", strings.Join(quantized, ", "))
	if !allow {
		return fmt.Errorf("%s: quantize the F32/F16/BF16 original, or pass --allow-requantize", msg)
	}
	fmt.Fprintf(stderr, "graft: warning: %s; re-quantizing compounds the rounding\n", msg)
	return nil
}

// reportQuantized prints what was written: the file, its preset and the
// count of tensors per type.
func reportQuantized(stdout io.Writer, out string, ft quantmix.FileType, asJSON bool) error {
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, struct {
			Out      string `json:"out"`
			Type     string `json:"type"`
			FileType uint32 `json:"file_type"`
			Bytes    int64  `json:"bytes"`
		}{out, ft.String(), uint32(ft), st.Size()})
	}
	fmt.Fprintf(stdout, "wrote %s (%s, general.file_type %d, %d bytes)\n", out, ft, uint32(ft), st.Size())
	return nil
}
