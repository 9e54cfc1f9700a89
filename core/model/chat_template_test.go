package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/formats/gguf"
)

func TestChatTemplateSources(t *testing.T) {
	m := &Model{Source: "gguf", SourcePath: "m.gguf", SourceMetadata: []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "tokenizer.chat_template", Value: "{{ messages }}"},
	}}
	text, src, err := m.ChatTemplate()
	if err != nil || text != "{{ messages }}" || src != "m.gguf: tokenizer.chat_template" {
		t.Fatalf("gguf: %q %q %v", text, src, err)
	}
	if text, src, err := (&Model{Source: "gguf", SourcePath: "m.gguf"}).ChatTemplate(); text != "" || src != "" || err != nil {
		t.Fatalf("gguf without a template: %q %q %v", text, src, err)
	}

	dir := t.TempDir()
	hf := &Model{Source: "hf", SourcePath: dir}
	if text, _, err := hf.ChatTemplate(); text != "" || err != nil {
		t.Fatalf("hf without files: %q %v", text, err)
	}
	cfg := filepath.Join(dir, "tokenizer_config.json")
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cfg, `{"chat_template": "from config"}`)
	if text, src, err := hf.ChatTemplate(); text != "from config" || src != cfg+": chat_template" || err != nil {
		t.Fatalf("hf config: %q %q %v", text, src, err)
	}
	write(cfg, `{"chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "named default"}]}`)
	if text, _, _ := hf.ChatTemplate(); text != "named default" {
		t.Fatalf("named templates: %q", text)
	}
	jinja := filepath.Join(dir, "chat_template.jinja")
	write(jinja, "from file")
	if text, src, err := hf.ChatTemplate(); text != "from file" || src != jinja || err != nil {
		t.Fatalf("chat_template.jinja: %q %q %v", text, src, err)
	}
	os.Remove(jinja)
	write(cfg, `{"chat_template": `)
	if _, _, err := hf.ChatTemplate(); err == nil || !strings.Contains(err.Error(), cfg) {
		t.Fatalf("bad config: %v", err)
	}
}
