package modelfile

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseDirectives reads a Modelfile in the forms Ollama's
// documentation shows: bare values, "quotes", """blocks""" over several
// lines, lower-case commands, comments, repeated PARAMETER stop.
func TestParseDirectives(t *testing.T) {
	src := `# a comment
FROM ./qwen2.5-0.5b.gguf
adapter ./adapter.gguf
TEMPLATE """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}"""
SYSTEM You are a pirate.
PARAMETER temperature 0.7
PARAMETER stop "<|im_end|>"
parameter STOP <|im_start|>
PARAMETER stop "say \"hi\""
LICENSE """Apache 2.0
(full text)"""
MESSAGE user Is Toronto in Canada?
MESSAGE assistant """yes,
it is"""
`
	got, err := Parse(strings.NewReader(src), "Modelfile")
	if err != nil {
		t.Fatal(err)
	}
	want := &Modelfile{
		From:     "./qwen2.5-0.5b.gguf",
		Adapters: []string{"./adapter.gguf"},
		Template: "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}",
		System:   "You are a pirate.",
		Parameters: []Parameter{{"temperature", "0.7"}, {"stop", "<|im_end|>"}, {"stop", "<|im_start|>"},
			{"stop", `say "hi"`}},
		Licenses: []string{"Apache 2.0\n(full text)"},
		Messages: []Message{{"user", "Is Toronto in Canada?"}, {"assistant", "yes,\nit is"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed\n%#v\nwant\n%#v", got, want)
	}
	if s := got.Params("stop"); len(s) != 3 {
		t.Errorf("Params(stop) = %q", s)
	}
}

// TestMarshalRoundTrips writes a Modelfile and parses it back unchanged.
func TestMarshalRoundTrips(t *testing.T) {
	conv, err := ConvertChatTemplate("<|im_start|>system\nYou are SmolLM<|im_end|>\n")
	if err != nil {
		t.Fatal(err)
	}
	m := &Modelfile{
		From:     "/models/base dir/model.gguf",
		Adapters: []string{"adapter.gguf"},
		Template: conv.Text,
		System:   conv.System,
		Parameters: []Parameter{{"stop", "<|im_end|>"}, {"stop", "<|im_start|>"}, {"num_ctx", "4096"},
			{"stop", `back\slash "q"`}},
		Licenses: []string{"MIT"},
		Messages: []Message{{"user", "hi\nthere"}},
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(strings.NewReader(string(data)), "Modelfile")
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("round trip:\n%#v\nwant\n%#v\nfile:\n%s", back, m, data)
	}
	for _, bad := range []*Modelfile{
		{},
		{From: "x", Template: `has """ inside`},
		{From: "a\nb"},
		{From: "x", Parameters: []Parameter{{"stop", "a\nb"}}},
	} {
		if _, err := bad.Marshal(); err == nil {
			t.Errorf("%#v: no error", bad)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"FROM a\nBOGUS x\n", `Modelfile:2: unknown command "BOGUS"`},
		{"FROM a\nTEMPLATE \"\"\"open\n", `Modelfile:2: TEMPLATE: unterminated """`},
		{"FROM a\nSYSTEM \"open\n", `Modelfile:2: SYSTEM: unterminated "`},
		{"FROM a\nPARAMETER\n", "PARAMETER needs a name"},
		{"FROM a\nMESSAGE tool hi\n", `MESSAGE role "tool"`},
		{"ADAPTER a.gguf\n", "no FROM line"},
		{"FROM a\nFROM b\n", "a second FROM"},
		{"FROM \"a\" b\n", "text after the closing quote"},
	} {
		_, err := Parse(strings.NewReader(tc.src), "Modelfile")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error containing %q", tc.src, err, tc.want)
		}
	}
}
