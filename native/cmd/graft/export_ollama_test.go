package main

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/modelfile"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/internal/randgguf"
)

// smolLM2Template is SmolLM2-Instruct's chat template (Apache 2.0), as its
// tokenizer_config.json and GGUF files carry it.
const smolLM2Template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

// ollamaBase writes a random SmolLM2-shaped GGUF carrying chatTemplate
// (none when empty) and a LoRA adapter for it; it returns both paths.
func ollamaBase(t *testing.T, chatTemplate string) (base, adapter string) {
	t.Helper()
	var kvs []gguf.KV
	if chatTemplate != "" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.chat_template", Value: chatTemplate})
	}
	rm, err := randgguf.NewFamily(randgguf.SmolLM2, 256, 5, kvs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base = filepath.Join(dir, "base.gguf")
	if err := rm.WriteGGUF(base); err != nil {
		t.Fatal(err)
	}
	m, err := model.LoadGGUF(base, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	a, err := peft.NewAdapter(m, []byte(`{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj","v_proj"],"init_lora_weights":false}`), rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	adapter = filepath.Join(dir, "adapter")
	if err := peft.Save(a, adapter); err != nil {
		t.Fatal(err)
	}
	return base, adapter
}

// readModelfile parses dir/Modelfile and checks that FROM and every
// ADAPTER name files that exist (relative paths from dir, as Ollama
// resolves them), that the adapter is a GGUF LoRA, and returns it.
func readModelfile(t *testing.T, dir string) *modelfile.Modelfile {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "Modelfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mf, err := modelfile.Parse(f, filepath.Join(dir, "Modelfile"))
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if _, err := os.Stat(resolve(mf.From)); err != nil {
		t.Errorf("FROM %s: %v", mf.From, err)
	}
	if len(mf.Adapters) != 1 {
		t.Fatalf("%d ADAPTER lines, want 1", len(mf.Adapters))
	}
	g, err := gguf.Open(resolve(mf.Adapters[0]))
	if err != nil {
		t.Fatalf("ADAPTER %s: %v", mf.Adapters[0], err)
	}
	defer g.Close()
	if typ, _ := g.String("general.type"); typ != "adapter" {
		t.Errorf("ADAPTER %s: general.type %q, want adapter", mf.Adapters[0], typ)
	}
	return mf
}

func TestExportOllama(t *testing.T) {
	base, adapter := ollamaBase(t, smolLM2Template)
	out := filepath.Join(t.TempDir(), "ollama")
	stdout, stderr, err := runExport(t, "--format", "ollama", "--model", base, "--adapter", adapter, "--out", out, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res ollamaExport
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	mf := readModelfile(t, out)
	abs, _ := filepath.Abs(base)
	want, err := modelfile.ConvertChatTemplate(smolLM2Template)
	if err != nil {
		t.Fatal(err)
	}
	if mf.From != abs || mf.Template != want.Text || mf.System != want.System || strings.Join(mf.Params("stop"), " ") != "<|im_end|> <|im_start|>" {
		t.Errorf("Modelfile: FROM %q, SYSTEM %q, stops %q, TEMPLATE\n%s", mf.From, mf.System, mf.Params("stop"), mf.Template)
	}
	if res.Template != "chatml" || res.Tensors == 0 || res.Modelfile != filepath.Join(out, "Modelfile") {
		t.Errorf("JSON report %+v", res)
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("unexpected warning: %s", stderr)
	}
}

// TestExportOllamaWithoutTemplate: a base whose chat template graft
// cannot convert, or that has none, gets a Modelfile without TEMPLATE and
// a warning saying so.
func TestExportOllamaWithoutTemplate(t *testing.T) {
	mistral := "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
	for _, tc := range []struct{ name, tmpl, warning string }{
		{"unrecognised", mistral, "not recognised"},
		{"none", "", "has no chat template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, adapter := ollamaBase(t, tc.tmpl)
			out := filepath.Join(t.TempDir(), "ollama")
			_, stderr, err := runExport(t, "--format", "ollama", "--model", base, "--adapter", adapter, "--out", out)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if !strings.Contains(stderr, "warning") || !strings.Contains(stderr, tc.warning) {
				t.Errorf("stderr %q, want a warning containing %q", stderr, tc.warning)
			}
			if mf := readModelfile(t, out); mf.Template != "" || len(mf.Params("stop")) != 0 {
				t.Errorf("TEMPLATE %q, stops %q: want none", mf.Template, mf.Params("stop"))
			}
		})
	}
	_, _, err := runExport(t, "--format", "ollama", "--adapter", "x", "--out", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--model is required") || !errors.As(err, new(usageError)) {
		t.Errorf("no --model: %v", err)
	}
}
