package modelfile

import (
	"errors"
	"os"
	"strings"
	"testing"
	"text/template"

	"github.com/graft-ml/graft/core/chattemplate"
)

// ollamaMessage is the shape of Ollama's api.Message that templates read.
type ollamaMessage struct{ Role, Content string }

// renderOllama renders a TEMPLATE as Ollama does for a chat request:
// system messages joined into .System (Ollama's collate), every message
// in .Messages; a default system prompt (the Modelfile's SYSTEM) is
// prepended when the conversation has none.
func renderOllama(t *testing.T, text, defaultSystem string, msgs []chattemplate.Message) string {
	t.Helper()
	tmpl, err := template.New("TEMPLATE").Parse(text)
	if err != nil {
		t.Fatalf("the TEMPLATE does not parse as a Go template: %v", err)
	}
	if defaultSystem != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		msgs = append([]chattemplate.Message{{Role: "system", Content: defaultSystem}}, msgs...)
	}
	var system []string
	var om []ollamaMessage
	for _, m := range msgs {
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		om = append(om, ollamaMessage{m.Role, m.Content})
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, map[string]any{"System": strings.Join(system, "\n\n"), "Messages": om, "Prompt": "", "Response": ""}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var conversations = map[string][]chattemplate.Message{
	"system, three turns": {
		{Role: "system", Content: "You are a concise geography tutor."},
		{Role: "user", Content: "What is the capital of France?"},
		{Role: "assistant", Content: "Paris."},
		{Role: "user", Content: "And of Switzerland?"},
		{Role: "assistant", Content: "Bern, not Zürich."},
		{Role: "user", Content: "Which of the two is\nfurther north?"},
	},
	"no system": {
		{Role: "user", Content: "Hi there! 👋"},
		{Role: "assistant", Content: "Hello! How can I help?"},
		{Role: "user", Content: "Tell me a joke."},
	},
	"one user turn": {{Role: "user", Content: "Hello"}},
}

// TestConvertedTemplatesRenderAsTheModel renders each family's own Jinja
// template (graft's chattemplate, which matches transformers) and the
// converted TEMPLATE (Go's text/template, as Ollama runs it) on the same
// conversations: equal text for conversations ending in a user turn with
// the generation prompt, and for those ending in an assistant turn, the
// Jinja text less the turn's closing marker (Ollama continues the turn).
func TestConvertedTemplatesRenderAsTheModel(t *testing.T) {
	for _, tc := range []struct {
		file, family, bos, system string
		stops                     []string
	}{
		{"llama-3.1.jinja", "llama3", "<|begin_of_text|>", "", []string{"<|eot_id|>", "<|start_header_id|>"}},
		{"llama-3.2.jinja", "llama3", "<|begin_of_text|>", "", []string{"<|eot_id|>", "<|start_header_id|>"}},
		{"qwen2.5.jinja", "chatml", "", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", []string{"<|im_end|>", "<|im_start|>"}},
		{"qwen3.jinja", "chatml", "", "", []string{"<|im_end|>", "<|im_start|>"}},
		{"smollm2.jinja", "chatml", "", "You are a helpful AI assistant named SmolLM, trained by Hugging Face", []string{"<|im_end|>", "<|im_start|>"}},
		{"gemma-3.jinja", "gemma", "<bos>", "", []string{"<end_of_turn>", "<start_of_turn>"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := ConvertChatTemplate(string(src))
			if err != nil {
				t.Fatal(err)
			}
			if conv.Family != tc.family || conv.System != tc.system || strings.Join(conv.Stops, " ") != strings.Join(tc.stops, " ") {
				t.Errorf("family %q, system %q, stops %q; want %q, %q, %q", conv.Family, conv.System, conv.Stops, tc.family, tc.system, tc.stops)
			}
			jt, err := chattemplate.Compile(tc.file, string(src))
			if err != nil {
				t.Fatal(err)
			}
			for name, msgs := range conversations {
				for _, open := range []bool{false, true} {
					msgs := msgs
					if open {
						msgs = append(msgs[:len(msgs):len(msgs)], chattemplate.Message{Role: "assistant", Content: "Well,"})
					}
					want, err := jt.Render(msgs, chattemplate.Options{AddGenerationPrompt: !open, BOSToken: tc.bos, Vars: map[string]any{"date_string": "26 Jul 2024"}})
					if err != nil {
						t.Fatal(err)
					}
					want = strings.TrimPrefix(want, tc.bos)
					if open {
						cut := false
						for _, s := range tc.stops[:1] {
							if w, ok := strings.CutSuffix(strings.TrimRight(want, "\n"), s); ok {
								want, cut = w, true
							}
						}
						if !cut {
							t.Fatalf("%s: the Jinja rendering does not end the assistant turn with %q:\n%s", name, tc.stops[0], want)
						}
					}
					if got := renderOllama(t, conv.Text, conv.System, msgs); got != want {
						t.Errorf("%s (open %v):\nOllama TEMPLATE gives\n%q\nthe model's template\n%q", name, open, got, want)
					}
				}
			}
		})
	}
}

func TestConvertRefusesUnknownTemplates(t *testing.T) {
	mistral := "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
	for _, src := range []string{mistral, "", "{{ messages }}"} {
		if _, err := ConvertChatTemplate(src); !errors.Is(err, ErrUnrecognisedTemplate) {
			t.Errorf("%.40q: %v, want ErrUnrecognisedTemplate", src, err)
		}
	}
}
