package train

import (
	"context"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/formats/gguf"
)

// Run renders {"messages"} with the model's own chat template by default,
// with the spec's template variables; a built-in named in the spec wins.
func TestRunUsesTheModelsChatTemplate(t *testing.T) {
	m := loadRunModel(t)
	m.SourceMetadata = append(m.SourceMetadata, gguf.KV{Key: "tokenizer.chat_template",
		Value: "{% if not graft_test is defined %}{{ raise_exception('rendered without the spec variables') }}{% endif %}" +
			"{% for m in messages %}{{ m.role }}: {{ m.content }}</s>\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"})
	chat := []data.Record{{Line: 1, Messages: []data.Message{{Role: "user", Content: "Who lived by the pond?"}, {Role: "assistant", Content: "Pip the little owl."}}}}
	spec := func() Spec {
		return Spec{Records: chat, Method: "lora", Options: map[string]any{"r": 2, "target_modules": []string{"q_proj"}}, SeqLen: 32, Batch: 1, Steps: 1}
	}

	_, err := Run(context.Background(), m, spec(), nil)
	if err == nil || !strings.Contains(err.Error(), "stories260K.gguf: tokenizer.chat_template") || !strings.Contains(err.Error(), "rendered without the spec variables") {
		t.Fatalf("err = %v", err)
	}
	s := spec()
	s.ChatTemplateVars = map[string]any{"graft_test": true}
	if _, err := Run(context.Background(), m, s, nil); err != nil {
		t.Fatal(err)
	}
	s = spec()
	s.ChatTemplate = data.ChatSimple
	if _, err := Run(context.Background(), m, s, nil); err != nil {
		t.Fatal(err)
	}
}
