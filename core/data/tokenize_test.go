package data

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/tokenizer"
)

// tokenizeLines parses JSONL text and tokenizes it as data.jsonl.
func tokenizeLines(t *testing.T, in string, tok tokenizer.Tokenizer, opt Options) ([]Example, error) {
	t.Helper()
	recs, err := ReadJSONL(strings.NewReader(in), "data.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	opt.Name = "data.jsonl"
	return Tokenize(recs, tok, opt)
}

// show renders an example as text with targets in [brackets], for
// readable failures.
func show(ex Example) string {
	var b strings.Builder
	for i, id := range ex.IDs {
		s := fmt.Sprintf("<%d>", id)
		if id >= byteOffset && id < 256+byteOffset {
			s = string(rune(id - byteOffset))
		}
		if ex.Loss[i] {
			s = "[" + s + "]"
		}
		b.WriteString(s)
	}
	return b.String()
}

func TestTokenizeShapes(t *testing.T) {
	const alpacaHead = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
	const alpacaHeadInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n"
	tok := newByteTok()
	chatTok := newByteTok("<|im_start|>", "<|im_end|>")
	start, end := chatTok.special("<|im_start|>"), chatTok.special("<|im_end|>")
	bos, eos := tokID(1, false), tokID(2, true)
	tests := []struct {
		name string
		tok  tokenizer.Tokenizer
		opt  Options
		line string
		want Example
	}{
		{"text", tok, DefaultOptions(), `{"text":"hi yo"}`,
			build(bos, txt("hi yo", true), eos)},
		{"text without EOS", tok, Options{}, `{"text":"hi"}`,
			build(bos, txt("hi", true))},
		{"text, tokenizer without EOS", &byteTok{bos: 1, eos: -1}, DefaultOptions(), `{"text":"hi"}`,
			build(bos, txt("hi", true))},
		{"text, tokenizer without BOS", &byteTok{bos: -1, eos: 2}, DefaultOptions(), `{"text":"hi"}`,
			build(txt("h", false), txt("i", true), eos)},
		{"prompt/completion", tok, DefaultOptions(), `{"prompt":"Q: 1+1?\nA:","completion":" 2"}`,
			build(bos, txt("Q: 1+1?\nA:", false), txt(" 2", true), eos)},
		{"alpaca with input", tok, DefaultOptions(), `{"instruction":"Add.","input":"1 1","output":"2"}`,
			build(bos, txt(alpacaHeadInput+"### Instruction:\nAdd.\n\n### Input:\n1 1\n\n### Response:\n", false), txt("2", true), eos)},
		{"alpaca with empty input", tok, DefaultOptions(), `{"instruction":"Hi.","input":"","output":"Hello"}`,
			build(bos, txt(alpacaHead+"### Instruction:\nHi.\n\n### Response:\n", false), txt("Hello", true), eos)},
		{"alpaca without input", tok, Options{}, `{"instruction":"Hi.","output":"Hello"}`,
			build(bos, txt(alpacaHead+"### Instruction:\nHi.\n\n### Response:\n", false), txt("Hello", true))},
		{"simple chat (default without chat tokens)", tok, DefaultOptions(),
			`{"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},{"role":"user","content":"Bye"},{"role":"assistant","content":"Bye!"}]}`,
			build(bos, txt("System: Be kind.\nUser: Hi\nAssistant:", false), txt(" Hello\n", true),
				txt("User: Bye\nAssistant:", false), txt(" Bye!\n", true))},
		{"chatml (default with chat tokens)", chatTok, DefaultOptions(),
			`{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}`,
			build(bos, tokID(start, false), txt("user\nHi", false), tokID(end, false), txt("\n", false),
				tokID(start, false), txt("assistant\n", false), txt("Hello", true), tokID(end, true), txt("\n", false))},
		{"chatml spelled out without chat tokens", tok, Options{ChatTemplate: ChatML},
			`{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]}`,
			build(bos, txt("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", false), txt("Yo<|im_end|>", true), txt("\n", false))},
		{"llama2", tok, Options{ChatTemplate: ChatLlama2},
			`{"messages":[{"role":"system","content":"Be kind."},{"role":"user","content":" Hi "},{"role":"assistant","content":"Hello"},{"role":"user","content":"Bye"},{"role":"assistant","content":"Bye!"}]}`,
			build(bos, txt("[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST]", false), txt(" Hello ", true), eos,
				bos, txt("[INST] Bye [/INST]", false), txt(" Bye! ", true), eos)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenizeLines(t, tt.line, tt.tok, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d examples, want 1", len(got))
			}
			if !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("got  %s\nwant %s", show(got[0]), show(tt.want))
			}
		})
	}
}

func TestTokenizeErrorsNameLine(t *testing.T) {
	tests := []struct {
		name, line, template, want string
	}{
		{"no shape", `{"txt":"a"}`, "", "none of the known shapes"},
		{"mixed shapes", `{"text":"a","prompt":"b","completion":"c"}`, "", "mixes shapes (text, prompt/completion)"},
		{"text and alpaca", `{"text":"a","output":"c"}`, "", "mixes shapes"},
		{"prompt only", `{"prompt":"a"}`, "", `"prompt" without "completion"`},
		{"completion only", `{"completion":"a"}`, "", `"completion" without "prompt"`},
		{"alpaca without output", `{"instruction":"a","input":"b"}`, "", `without "output"`},
		{"alpaca without instruction", `{"output":"a"}`, "", `without "instruction"`},
		{"empty messages", `{"messages":[]}`, "", `"messages" is empty`},
		{"unknown role", `{"messages":[{"role":"user","content":"a"},{"role":"bot","content":"b"}]}`, "", `message 2: unknown role "bot"`},
		{"no assistant turn", `{"messages":[{"role":"user","content":"a"}]}`, "", "nothing to train on"},
		{"empty completion", `{"prompt":"a","completion":""}`, "", "nothing to train on"},
		{"llama2 order", `{"messages":[{"role":"system","content":"s"},{"role":"assistant","content":"a"}]}`, ChatLlama2, `message 2 is "assistant", want "user"`},
		{"llama2 late system", `{"messages":[{"role":"user","content":"u"},{"role":"system","content":"s"}]}`, ChatLlama2, `message 2 is "system"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The bad record sits on line 3, after a good one and a blank.
			in := "{\"text\":\"ok\"}\n\n" + tt.line + "\n"
			_, err := tokenizeLines(t, in, newByteTok(), Options{ChatTemplate: tt.template})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "data.jsonl:3: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want data.jsonl:3 and %q", err, tt.want)
			}
		})
	}
}

func TestTokenizeUnknownTemplate(t *testing.T) {
	_, err := tokenizeLines(t, `{"text":"a"}`, newByteTok(), Options{ChatTemplate: "vicuna"})
	if err == nil || !strings.Contains(err.Error(), `unknown chat template "vicuna"`) {
		t.Fatalf("error %v", err)
	}
}

func TestTokenizeRecordsWithoutLines(t *testing.T) {
	recs := []Record{{Text: new("a")}, {}}
	_, err := Tokenize(recs, newByteTok(), Options{Name: "mem"})
	if err == nil || !strings.Contains(err.Error(), "mem: record #2") {
		t.Fatalf("error %v, want it to name record #2", err)
	}
}

// With a space-prefixing tokenizer a later segment's one leading space is
// the prefix itself, so " 2" and "2" as completions encode the same, and
// nothing doubles the space.
func TestTokenizeSpacePrefix(t *testing.T) {
	tok := prefixTok{newByteTok()}
	bos, eos := tokID(1, false), tokID(2, true)
	want := build(bos, txt(" Q:", false), txt(" 2", true), eos)
	for _, completion := range []string{" 2", "2"} {
		line := fmt.Sprintf(`{"prompt":"Q:","completion":%q}`, completion)
		got, err := tokenizeLines(t, line, tok, DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[0], want) {
			t.Errorf("completion %q: got %s, want %s", completion, show(got[0]), show(want))
		}
	}
	// After a BOS inside the sequence (llama2's second exchange) the text
	// starts afresh and keeps its prefix.
	got, err := tokenizeLines(t, `{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"assistant","content":"d"}]}`,
		tok, Options{ChatTemplate: ChatLlama2})
	if err != nil {
		t.Fatal(err)
	}
	want = build(bos, txt(" [INST] a [/INST]", false), txt(" b ", true), eos, bos, txt(" [INST] c [/INST]", false), txt(" d ", true), eos)
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("llama2: got %s, want %s", show(got[0]), show(want))
	}
}

// ChatPrompt must tokenize a conversation exactly as training does up to
// where the answer starts, or a fine-tuned model would see unfamiliar
// token boundaries at inference.
func TestChatPromptMatchesTraining(t *testing.T) {
	msgs := []Message{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Name?"}, {"assistant", "Pip"}}
	toks := map[string]tokenizer.Tokenizer{
		"bytes":        newByteTok("<|im_start|>", "<|im_end|>"),
		"space prefix": prefixTok{newByteTok()},
	}
	for tokName, tok := range toks {
		for _, tmpl := range []string{ChatML, ChatLlama2, ChatSimple} {
			t.Run(tokName+"/"+tmpl, func(t *testing.T) {
				exs, err := Tokenize([]Record{{Messages: msgs}}, tok, Options{ChatTemplate: tmpl})
				if err != nil {
					t.Fatal(err)
				}
				train := exs[0]
				prompt, err := ChatPrompt(msgs[:4], tok, Options{ChatTemplate: tmpl})
				if err != nil {
					t.Fatal(err)
				}
				// The prompt is the training sequence up to the first
				// target token of the last answer.
				last := len(train.Loss) - 1
				for !train.Loss[last] {
					last--
				}
				for train.Loss[last-1] {
					last--
				}
				if !reflect.DeepEqual(prompt, train.IDs[:last]) {
					t.Errorf("prompt   %v\ntraining %v", prompt, train.IDs[:last])
				}
			})
		}
	}
}

func TestChatPromptErrors(t *testing.T) {
	tok := newByteTok()
	if _, err := ChatPrompt(nil, tok, Options{ChatTemplate: ChatSimple}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty: %v", err)
	}
	if _, err := ChatPrompt([]Message{{"user", "a"}, {"assistant", "b"}}, tok, Options{ChatTemplate: ChatLlama2}); err == nil || !strings.Contains(err.Error(), "end with a user message") {
		t.Errorf("llama2 ending with assistant: %v", err)
	}
	if _, err := ChatPrompt([]Message{{"human", "a"}}, tok, Options{}); err == nil || !strings.Contains(err.Error(), "unknown role") {
		t.Errorf("bad role: %v", err)
	}
}
