package chattemplate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCases is testdata/cases.json: the conversations the real templates
// in testdata/templates are rendered with, and each template's special
// tokens. testdata/expected holds the renderings Python's Jinja2 gives
// (tools/chattemplate/render.py).
type testCases struct {
	Templates map[string]struct {
		BOS string `json:"bos_token"`
		EOS string `json:"eos_token"`
	} `json:"templates"`
	Cases []struct {
		Name     string                     `json:"name"`
		Only     []string                   `json:"only"`
		Messages []Message                  `json:"messages"`
		AddGen   bool                       `json:"add_generation_prompt"`
		Vars     map[string]json.RawMessage `json:"vars"`
	} `json:"cases"`
}

func readCases(t *testing.T) testCases {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c testCases
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func loadTemplate(t *testing.T, name string) *Template {
	t.Helper()
	path := filepath.Join("testdata", "templates", name+".jinja")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := Compile(path, string(text))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// TestRealTemplatesMatchJinja2 renders every case with every real template
// it applies to and compares with Python Jinja2's rendering.
func TestRealTemplatesMatchJinja2(t *testing.T) {
	cases := readCases(t)
	n := 0
	for name, tokens := range cases.Templates {
		tmpl := loadTemplate(t, name)
		for _, c := range cases.Cases {
			if len(c.Only) > 0 && !contains(c.Only, name) {
				continue
			}
			n++
			t.Run(name+"/"+c.Name, func(t *testing.T) {
				want, err := os.ReadFile(filepath.Join("testdata", "expected", name+"."+c.Name+".txt"))
				if err != nil {
					t.Fatal(err)
				}
				vars := map[string]any{}
				for k, v := range c.Vars {
					vars[k] = v
				}
				got, err := tmpl.Render(c.Messages, Options{AddGenerationPrompt: c.AddGen, BOSToken: tokens.BOS, EOSToken: tokens.EOS, Vars: vars})
				if err != nil {
					t.Fatal(err)
				}
				if got != string(want) {
					t.Errorf("rendering differs from Jinja2's at byte %d\ngot:\n%s\nwant:\n%s", commonPrefix(got, string(want)), got, want)
				}
			})
		}
	}
	if n < 29 {
		t.Fatalf("only %d renderings checked", n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// threeTurns is the "three_turns" case of cases.json.
func threeTurns() []Message {
	return []Message{
		{"system", "You are a concise geography tutor."},
		{"user", "What is the capital of France?"},
		{"assistant", "Paris."},
		{"user", "And of Switzerland?"},
		{"assistant", "Bern, not Zürich."},
		{"user", "Which of the two is further north?"},
		{"assistant", "Paris is further north than Bern."},
	}
}

// handWritten are the three-turn renderings written out from each
// family's documented chat format (model cards), independent of any Jinja
// engine; they must agree with both Jinja2's and ours.
var handWritten = map[string]string{
	"llama-3.1": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are a concise geography tutor.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nAnd of Switzerland?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nBern, not Zürich.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\nWhich of the two is further north?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nParis is further north than Bern.<|eot_id|>",
	"qwen2.5": "<|im_start|>system\nYou are a concise geography tutor.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n" +
		"<|im_start|>user\nAnd of Switzerland?<|im_end|>\n<|im_start|>assistant\nBern, not Zürich.<|im_end|>\n" +
		"<|im_start|>user\nWhich of the two is further north?<|im_end|>\n<|im_start|>assistant\nParis is further north than Bern.<|im_end|>\n",
	// Qwen3 gives the answer after the last question an empty thinking
	// block.
	"qwen3": "<|im_start|>system\nYou are a concise geography tutor.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n" +
		"<|im_start|>user\nAnd of Switzerland?<|im_end|>\n<|im_start|>assistant\nBern, not Zürich.<|im_end|>\n" +
		"<|im_start|>user\nWhich of the two is further north?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nParis is further north than Bern.<|im_end|>\n",
	"smollm2": "<|im_start|>system\nYou are a concise geography tutor.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\nParis.<|im_end|>\n" +
		"<|im_start|>user\nAnd of Switzerland?<|im_end|>\n<|im_start|>assistant\nBern, not Zürich.<|im_end|>\n" +
		"<|im_start|>user\nWhich of the two is further north?<|im_end|>\n<|im_start|>assistant\nParis is further north than Bern.<|im_end|>\n",
	// Gemma 3 has no system role: the system text opens the first user
	// turn; the assistant is "model".
	"gemma-3": "<bos><start_of_turn>user\nYou are a concise geography tutor.\n\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\nParis.<end_of_turn>\n" +
		"<start_of_turn>user\nAnd of Switzerland?<end_of_turn>\n<start_of_turn>model\nBern, not Zürich.<end_of_turn>\n" +
		"<start_of_turn>user\nWhich of the two is further north?<end_of_turn>\n<start_of_turn>model\nParis is further north than Bern.<end_of_turn>\n",
}

// endMarkers are the spellings of each family's end-of-generation tokens.
var endMarkers = map[string][]string{
	"llama-3.1": {"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"},
	"llama-3.2": {"<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"},
	"qwen2.5":   {"<|endoftext|>", "<|im_end|>"},
	"qwen3":     {"<|endoftext|>", "<|im_end|>"},
	"smollm2":   {"<|endoftext|>", "<|im_end|>"},
	"gemma-3":   {"<eos>", "<end_of_turn>"},
}

func TestThreeTurnsByHand(t *testing.T) {
	cases := readCases(t)
	handWritten["llama-3.2"] = handWritten["llama-3.1"]
	for name, want := range handWritten {
		tok := cases.Templates[name]
		got, err := loadTemplate(t, name).Render(threeTurns(), Options{BOSToken: tok.BOS, EOSToken: tok.EOS,
			Vars: map[string]any{"date_string": "26 Jul 2024"}})
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s:\ngot  %q\nwant %q", name, got, want)
		}
	}
}

// TestRenderTrainingSpans checks that the assistant spans are exactly each
// answer and its end-of-turn marker (Qwen3's last one with the empty
// thinking block it renders), and that the text around them is the prompt.
func TestRenderTrainingSpans(t *testing.T) {
	cases := readCases(t)
	wantSpans := map[string][]string{
		"llama-3.1": {"Paris.<|eot_id|>", "Bern, not Zürich.<|eot_id|>", "Paris is further north than Bern.<|eot_id|>"},
		"llama-3.2": {"Paris.<|eot_id|>", "Bern, not Zürich.<|eot_id|>", "Paris is further north than Bern.<|eot_id|>"},
		"qwen2.5":   {"Paris.<|im_end|>", "Bern, not Zürich.<|im_end|>", "Paris is further north than Bern.<|im_end|>"},
		"qwen3":     {"Paris.<|im_end|>", "Bern, not Zürich.<|im_end|>", "<think>\n\n</think>\n\nParis is further north than Bern.<|im_end|>"},
		"smollm2":   {"Paris.<|im_end|>", "Bern, not Zürich.<|im_end|>", "Paris is further north than Bern.<|im_end|>"},
		"gemma-3":   {"Paris.<end_of_turn>", "Bern, not Zürich.<end_of_turn>", "Paris is further north than Bern.<end_of_turn>"},
	}
	for name, want := range wantSpans {
		tok := cases.Templates[name]
		tmpl := loadTemplate(t, name)
		opt := Options{BOSToken: tok.BOS, EOSToken: tok.EOS, Vars: map[string]any{"date_string": "26 Jul 2024"}}
		msgs := threeTurns()
		text, spans, err := tmpl.RenderTraining(msgs, opt, endMarkers[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		full, _ := tmpl.Render(msgs, opt)
		if text != full {
			t.Errorf("%s: training text differs from the rendering", name)
		}
		if len(spans) != len(want) {
			t.Fatalf("%s: %d spans, want %d", name, len(spans), len(want))
		}
		for i, s := range spans {
			if got := text[s.Start:s.End]; got != want[i] {
				t.Errorf("%s: span %d = %q, want %q", name, i, got, want[i])
			}
		}
		// What precedes each answer is the generation prompt for it.
		for i, s := range spans {
			prompt, err := tmpl.Render(msgs[:2*i+2], Options{AddGenerationPrompt: true, BOSToken: tok.BOS, EOSToken: tok.EOS, Vars: opt.Vars})
			if err != nil {
				t.Fatal(err)
			}
			if text[:s.Start] != prompt {
				t.Errorf("%s: text before span %d is not the generation prompt:\n%q\n%q", name, i, text[:s.Start], prompt)
			}
		}
	}
}

// Qwen3 drops the reasoning of answers before the last question; spans
// still end at each answer's <|im_end|>.
func TestRenderTrainingQwen3Reasoning(t *testing.T) {
	tmpl := loadTemplate(t, "qwen3")
	msgs := []Message{
		{"user", "What is 2+2?"},
		{"assistant", "<think>\nTwo plus two.\n</think>\n\n4"},
		{"user", "And 3+3?"},
		{"assistant", "<think>\nThree plus three.\n</think>\n\n6"},
	}
	text, spans, err := tmpl.RenderTraining(msgs, Options{EOSToken: "<|im_end|>"}, endMarkers["qwen3"])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"4<|im_end|>", "<think>\nThree plus three.\n</think>\n\n6<|im_end|>"}
	for i, s := range spans {
		if got := text[s.Start:s.End]; got != want[i] {
			t.Errorf("span %d = %q, want %q", i, got, want[i])
		}
	}
	expected, err := os.ReadFile(filepath.Join("testdata", "expected", "qwen3.thinking_last.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if text != string(expected) {
		t.Errorf("text %q, want %q", text, expected)
	}
}

// Without date_string, Llama 3.2 prints today's date (strftime_now), as
// transformers does.
func TestLlama32TodayDate(t *testing.T) {
	before := time.Now().Format("02 Jan 2006")
	got, err := loadTemplate(t, "llama-3.2").Render([]Message{{"user", "Hi"}}, Options{BOSToken: "<|begin_of_text|>"})
	after := time.Now().Format("02 Jan 2006")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "Today Date: "+before+"\n") && !strings.Contains(got, "Today Date: "+after+"\n") {
		t.Fatalf("no today's date (%s) in %q", before, got)
	}
}

func TestRenderErrorsNameSourceAndJinjaError(t *testing.T) {
	gemma := loadTemplate(t, "gemma-3")
	_, err := gemma.Render([]Message{{"user", "a"}, {"user", "b"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("testdata", "templates", "gemma-3.jinja")) ||
		!strings.Contains(err.Error(), "Conversation roles must alternate user/assistant/user/assistant/...") {
		t.Fatalf("err = %v", err)
	}
	_, _, err = gemma.RenderTraining([]Message{{"user", "a"}, {"user", "b"}, {"assistant", "c"}}, Options{}, endMarkers["gemma-3"])
	if err == nil || !strings.Contains(err.Error(), "Conversation roles must alternate") {
		t.Fatalf("err = %v", err)
	}

	for _, tc := range []struct{ text, want string }{
		{"{% for m in messages %}{{ m.content }}", "for"},                // unclosed block
		{"{{ messages[0].content | no_such_filter }}", "no_such_filter"}, // unknown filter
	} {
		tmpl, err := Compile("model.gguf: tokenizer.chat_template", tc.text)
		if err == nil {
			_, err = tmpl.Render([]Message{{"user", "hi"}}, Options{})
		}
		if err == nil {
			t.Errorf("%q: no error", tc.text)
			continue
		}
		if !strings.HasPrefix(err.Error(), "chat template from model.gguf: tokenizer.chat_template: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v", tc.text, err)
		}
	}
}

// A template whose spans cannot be found says so, naming the message.
func TestRenderTrainingNoEnd(t *testing.T) {
	// The last answer renders with a suffix the earlier ones lack, and
	// there is no end-of-turn marker to fall back on.
	tmpl, err := Compile("test", "{% for m in messages %}{{ m.role }}: {{ m.content }}{% if loop.last and m.role == 'assistant' %}!{% endif %}\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{"user", "a"}, {"assistant", "b"}, {"user", "c"}}
	_, _, err = tmpl.RenderTraining(msgs, Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "assistant message 2") || !strings.Contains(err.Error(), "cannot tell where it ends") {
		t.Fatalf("err = %v", err)
	}
	// A template that renders the history differently once the
	// conversation stops is refused.
	odd, err := Compile("odd", "{% for m in messages %}{{ m.content }}{% if loop.last %}!{% endif %}\n{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = odd.RenderTraining(msgs, Options{}, []string{"\n"})
	if err == nil || !strings.Contains(err.Error(), "chat template from odd: assistant message 2: the messages before it render differently") {
		t.Fatalf("err = %v", err)
	}
	// With a marker the span ends there.
	tmpl, _ = Compile("test", "{% for m in messages %}{{ m.role }}: {{ m.content }}{% if loop.last and m.role == 'assistant' %}!{% endif %}<end>\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}")
	text, spans, err := tmpl.RenderTraining(msgs, Options{}, []string{"<end>"})
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 || text[spans[0].Start:spans[0].End] != "b<end>" {
		t.Fatalf("spans %v of %q", spans, text)
	}
}

func TestVarsJSONKeepsKeyOrder(t *testing.T) {
	tmpl, err := Compile("test", "{{ tools | tojson }}|{{ flag }}|{{ n + 1 }}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tmpl.Render(nil, Options{Vars: map[string]any{
		"tools": json.RawMessage(`[{"z": 1, "a": [true, null, "é"], "m": {"y": 2.5, "b": "x"}}]`),
		"flag":  false,
		"n":     uint64(41),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"z": 1, "a": [true, null, "é"], "m": {"y": 2.5, "b": "x"}}]|False|42`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := tmpl.Render(nil, Options{Vars: map[string]any{"tools": json.RawMessage(`{"a":`)}}); err == nil || !strings.Contains(err.Error(), "variable tools") {
		t.Fatalf("err = %v", err)
	}
}
