package data

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/chattemplate"
	"github.com/graft-ml/graft/core/tokenizer"
	"github.com/graft-ml/graft/internal/tokfixture"
)

// family is a real chat template with a fixture tokenizer of its kind.
type family struct {
	template string // core/chattemplate/testdata/templates/NAME.jinja
	vocab    string // the fixture vocabulary's settings
	tok      tokenizer.Tokenizer
	// answers are the three answers' spans as the template renders them:
	// what must be, exactly, the targets.
	answers []string
}

func families(t *testing.T) []family {
	t.Helper()
	f, err := tokfixture.Load()
	if err != nil {
		t.Fatal(err)
	}
	bpe := func(pre string) tokenizer.Tokenizer {
		for _, p := range f.Cases.Pres {
			if p.Pre == pre {
				tok, err := tokenizer.NewGGUFBPE(f.BPE.GGUFConfig(p))
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
		}
		t.Fatalf("no fixture pre-tokenizer %q", pre)
		return nil
	}
	spm := func(name string) tokenizer.Tokenizer {
		for _, s := range f.Cases.SPM {
			if s.Name == name {
				tok, err := tokenizer.NewSentencePiece(f.SPM.Config(s))
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
		}
		t.Fatalf("no fixture SentencePiece %q", name)
		return nil
	}
	answers := func(end string) []string {
		return []string{"Paris." + end, "Bern, not Zürich." + end, "Paris is further north than Bern." + end}
	}
	qwen3 := answers("<|im_end|>")
	qwen3[2] = "<think>\n\n</think>\n\n" + qwen3[2]
	return []family{
		{"llama-3.1", "llama-bpe", bpe("llama-bpe"), answers("<|eot_id|>")},
		{"llama-3.2", "llama-bpe", bpe("llama-bpe"), answers("<|eot_id|>")},
		{"qwen2.5", "qwen2", bpe("qwen2"), answers("<|im_end|>")},
		{"qwen3", "qwen2", bpe("qwen2"), qwen3},
		{"smollm2", "smollm", bpe("smollm"), answers("<|im_end|>")},
		{"gemma-3", "gemma-spm", spm("gemma-spm"), answers("<end_of_turn>")},
		// Gemma's template with a Llama-2-style vocabulary that adds a space
		// prefix after every special token.
		{"gemma-3", "llama-spm", spm("llama-spm"), answers("<end_of_turn>")},
	}
}

func readTemplate(t *testing.T, name string) (text, source string) {
	t.Helper()
	source = filepath.Join("..", "chattemplate", "testdata", "templates", name+".jinja")
	b, err := os.ReadFile(source)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), source
}

func threeTurnMessages() []Message {
	return []Message{
		{RoleSystem, "You are a concise geography tutor."},
		{RoleUser, "What is the capital of France?"},
		{RoleAssistant, "Paris."},
		{RoleUser, "And of Switzerland?"},
		{RoleAssistant, "Bern, not Zürich."},
		{RoleUser, "Which of the two is further north?"},
		{RoleAssistant, "Paris is further north than Bern."},
	}
}

// TestModelTemplateLossMask trains on a three-turn conversation with each
// real template: the ids are the whole rendering encoded as llama.cpp
// encodes a chat prompt, and the targets are exactly the tokens of the
// three answers with their end-of-turn tokens.
func TestModelTemplateLossMask(t *testing.T) {
	for _, fam := range families(t) {
		t.Run(fam.template+"/"+fam.vocab, func(t *testing.T) {
			text, source := readTemplate(t, fam.template)
			opt := DefaultOptions()
			opt.ModelChatTemplate, opt.ModelChatTemplateSource = text, source
			opt.ChatTemplateVars = map[string]any{"date_string": "26 Jul 2024"}
			msgs := threeTurnMessages()
			exs, err := Tokenize([]Record{{Messages: msgs}}, fam.tok, opt)
			if err != nil {
				t.Fatal(err)
			}
			ex := exs[0]

			// The ids are the rendering encoded whole, with one BOS.
			tmpl, err := chattemplate.Compile(source, text)
			if err != nil {
				t.Fatal(err)
			}
			copt := chattemplate.Options{BOSToken: fam.tok.TokenString(fam.tok.BOS()), EOSToken: fam.tok.TokenString(fam.tok.EOS()), Vars: opt.ChatTemplateVars}
			rendered, err := tmpl.Render(toTemplateMessages(msgs), copt)
			if err != nil {
				t.Fatal(err)
			}
			want := fam.tok.Encode(rendered, false)
			if tokenizer.AddsBOS(fam.tok) && want[0] != fam.tok.BOS() {
				want = append([]int32{fam.tok.BOS()}, want...)
			}
			if !reflect.DeepEqual(ex.IDs, want) {
				t.Fatalf("ids differ from the rendering encoded whole\n got %v\nwant %v", ex.IDs, want)
			}
			if n := strings.Count(rendered, fam.tok.TokenString(fam.tok.BOS())); fam.tok.BOS() >= 0 && strings.HasPrefix(rendered, fam.tok.TokenString(fam.tok.BOS())) && count(ex.IDs, fam.tok.BOS()) != n {
				t.Errorf("%d BOS in the ids, %d in the text", count(ex.IDs, fam.tok.BOS()), n)
			}

			// The targets are three runs, each exactly an answer.
			var runs [][]int32
			for i, l := range ex.Loss {
				if !l {
					continue
				}
				if i == 0 || !ex.Loss[i-1] {
					runs = append(runs, nil)
				}
				runs[len(runs)-1] = append(runs[len(runs)-1], ex.IDs[i])
			}
			if len(runs) != len(fam.answers) {
				t.Fatalf("%d target runs, want %d: %v", len(runs), len(fam.answers), runs)
			}
			for i, run := range runs {
				if got := spell(fam.tok, run); got != fam.answers[i] {
					t.Errorf("targets %d spell %q, want %q", i, got, fam.answers[i])
				}
			}

			// The generation prompt for the last answer is the training
			// sequence up to that answer's first target.
			prompt, err := ChatPrompt(msgs[:6], fam.tok, opt)
			if err != nil {
				t.Fatal(err)
			}
			first := len(ex.Loss) - 1
			for first > 0 && (ex.Loss[first-1] || !ex.Loss[first]) {
				first--
			}
			if !reflect.DeepEqual(prompt, ex.IDs[:first]) {
				t.Errorf("prompt %v\n is not the training prefix %v", prompt, ex.IDs[:first])
			}
		})
	}
}

func count(ids []int32, id int32) int {
	n := 0
	for _, x := range ids {
		if x == id {
			n++
		}
	}
	return n
}

// spell writes tokens as the text they stand for: special tokens by their
// spelling, others by their bytes, less SentencePiece's space prefix after
// a special token.
func spell(tok tokenizer.Tokenizer, ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if s := tok.TokenBytes(id); len(s) > 0 {
			b.Write(s)
		} else {
			b.WriteString(tok.TokenString(id))
		}
	}
	return b.String()
}

func TestModelTemplateChoice(t *testing.T) {
	fams := families(t)
	qwen := fams[2].tok
	text, source := readTemplate(t, "smollm2")
	recs := []Record{{Messages: []Message{{RoleUser, "Hi"}, {RoleAssistant, "Hello"}}}}

	// auto without a model template: ChatML, as before (the vocabulary
	// has <|im_start|>); SmolLM2's own template adds its default system
	// message.
	plain, err := Tokenize(recs, qwen, Options{ChatTemplate: ChatAuto})
	if err != nil {
		t.Fatal(err)
	}
	own, err := Tokenize(recs, qwen, Options{ModelChatTemplate: text, ModelChatTemplateSource: source})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(qwen.Decode(own[0].IDs), "named SmolLM") || strings.Contains(qwen.Decode(plain[0].IDs), "SmolLM") {
		t.Errorf("auto: with the model's template %q, without %q", qwen.Decode(own[0].IDs), qwen.Decode(plain[0].IDs))
	}
	// An explicit built-in wins over the model's template.
	chatml, err := Tokenize(recs, qwen, Options{ChatTemplate: ChatML, ModelChatTemplate: text})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(chatml[0].IDs, plain[0].IDs) {
		t.Errorf("chatml with a model template: %v, want %v", chatml[0].IDs, plain[0].IDs)
	}
	// "model" needs one.
	if _, err := Tokenize(recs, qwen, Options{ChatTemplate: ChatModel}); err == nil || !strings.Contains(err.Error(), "the model has no chat template") {
		t.Errorf("model without template: %v", err)
	}
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{}, ChatML},
		{Options{ModelChatTemplate: "x", ModelChatTemplateSource: "m.gguf: tokenizer.chat_template"}, "the model's own (m.gguf: tokenizer.chat_template)"},
		{Options{ChatTemplate: ChatLlama2, ModelChatTemplate: "x"}, ChatLlama2},
	} {
		if got, err := ChatTemplateName(qwen, tc.opt); err != nil || got != tc.want {
			t.Errorf("ChatTemplateName(%+v) = %q, %v; want %q", tc.opt, got, err, tc.want)
		}
	}
}

func TestModelTemplateErrors(t *testing.T) {
	tok := families(t)[0].tok
	const source = "model.gguf: tokenizer.chat_template"
	broken := Options{ModelChatTemplate: "{% for m in messages %}{{ m.content }}", ModelChatTemplateSource: source}
	// A broken template does not matter to data without "messages".
	if _, err := tokenizeLines(t, `{"text":"hi"}`, tok, broken); err != nil {
		t.Fatalf("text data with a broken chat template: %v", err)
	}
	_, err := tokenizeLines(t, `{"text":"hi"}`+"\n"+`{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`, tok, broken)
	if err == nil || !strings.Contains(err.Error(), "data.jsonl") || !strings.Contains(err.Error(), "chat template from "+source) {
		t.Fatalf("broken template: %v", err)
	}
	// A template that raises names the line, the source and the message.
	text, src := readTemplate(t, "gemma-3")
	opt := Options{ModelChatTemplate: text, ModelChatTemplateSource: src}
	_, err = tokenizeLines(t, `{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"assistant","content":"c"}]}`, tok, opt)
	if err == nil || !strings.Contains(err.Error(), "data.jsonl:1: chat template from "+src) || !strings.Contains(err.Error(), "Conversation roles must alternate") {
		t.Fatalf("raising template: %v", err)
	}
}

// mislabel is a tokenizer whose tokens do not spell the text back (as an
// unknown-token stand-in would not): byte 'Z' shows as "?".
type mislabel struct{ *byteTok }

func (m mislabel) TokenBytes(id int32) []byte {
	if id == 'Z'+byteOffset {
		return []byte("?")
	}
	return m.byteTok.TokenBytes(id)
}

// When the tokens cannot be aligned with the text, the conversation is
// encoded span by span and the targets are still exactly the answers.
func TestModelTemplateUnalignedFallsBack(t *testing.T) {
	tok := mislabel{newByteTok()}
	opt := Options{ModelChatTemplate: "{% for m in messages %}{{ m.role }}: {{ m.content }}</s>\n{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"}
	exs, err := Tokenize([]Record{{Messages: []Message{{RoleUser, "Zurich?"}, {RoleAssistant, "Zug!"}}}}, tok, opt)
	if err != nil {
		t.Fatal(err)
	}
	// (byteTok spells out "</s>" byte by byte.)
	want := build(tokID(1, false), txt("user: Zurich?</s>\nassistant: ", false), txt("Zug!</s>", true), txt("\n", false))
	if show(exs[0]) != show(want) {
		t.Fatalf("got  %s\nwant %s", show(exs[0]), show(want))
	}
}
