package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/model"
)

type chatReply struct {
	Text     string  `json:"text"`
	IDs      []int32 `json:"ids"`
	Template string  `json:"template"`
	Prompt   string  `json:"prompt"`
}

// withTemplate saves stories260K with a chat template in its metadata.
func withTemplate(t *testing.T, tmpl string) string {
	t.Helper()
	m, err := model.Load(modelPath, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	m.SourceMetadata = append(m.SourceMetadata, gguf.KV{Key: "tokenizer.chat_template", Value: tmpl})
	path := filepath.Join(t.TempDir(), "chat.gguf")
	if err := m.SaveGGUF(path, model.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestChatMessages(t *testing.T) {
	// stories260K has no chat template and no chat tokens: auto picks
	// the simple template.
	var r chatReply
	graftJSON(t, &r, "chat", "--model", modelPath, "--system", "Be brief.", "--message", "Hi", "--assistant", "Hello", "--message", "Once upon a time",
		"--temperature", "0", "--max-tokens", "12")
	// (The built-in templates encode piece by piece, and stories260K's
	// SentencePiece puts a space before each piece.)
	if r.Template != "simple" || !strings.HasPrefix(r.Prompt, "<s> System: Be brief.\nUser: Hi\nAssistant: Hello\n") ||
		!strings.HasSuffix(r.Prompt, "User: Once upon a time\nAssistant:") || len(r.IDs) == 0 {
		t.Fatalf("reply %+v", r)
	}

	// A model's own template is used by default and names its source.
	path := withTemplate(t, "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}")
	graftJSON(t, &r, "chat", "--model", path, "--message", "Once upon a time", "--temperature", "0", "--max-tokens", "12")
	if r.Template != "the model's own ("+path+": tokenizer.chat_template)" || r.Prompt != "<s> [user] Once upon a time\n[assistant]" {
		t.Fatalf("reply %+v", r)
	}
	// Unless a built-in is asked for.
	graftJSON(t, &r, "chat", "--model", path, "--chat-template", "simple", "--message", "Once upon a time", "--max-tokens", "0")
	if r.Template != "simple" || len(r.IDs) != 0 {
		t.Fatalf("reply %+v", r)
	}

	// generate --chat answers the same prompt with the same reply.
	var g struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	graftJSON(t, &g, "generate", "--chat", "--model", path, "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "12")
	graftJSON(t, &r, "chat", "--model", path, "--message", "Once upon a time", "--temperature", "0", "--max-tokens", "12")
	if g.Text != r.Text || len(g.IDs) != len(r.IDs) {
		t.Fatalf("generate --chat %q, chat %q", g.Text, r.Text)
	}
	out, _, code := graft(t, "generate", "--chat", "--model", path, "--prompt", "Once upon a time", "--temperature", "0", "--max-tokens", "12")
	if code != 0 || strings.TrimRight(out, "\n") != g.Text {
		t.Fatalf("streamed %q (exit %d), want the answer alone %q", out, code, g.Text)
	}
}

func TestChatInteractive(t *testing.T) {
	old := stdin
	defer func() { stdin = old }()
	stdin = strings.NewReader("Once upon a time\n\nThe end\n")
	out, errOut, code := graft(t, "chat", "--model", modelPath, "--temperature", "0", "--max-tokens", "8")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// Two messages (the blank line is skipped), two replies, a prompt
	// for each line read and one at the end.
	if !strings.Contains(errOut, "chat template: simple") || strings.Count(errOut, "> ") != 4 {
		t.Fatalf("stderr %q", errOut)
	}
	if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) < 2 {
		t.Fatalf("stdout %q", out)
	}
}

func TestChatErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"chat", "--model", modelPath, "--json"}, 2, "--json needs the conversation"},
		{[]string{"chat", "--model", modelPath, "--message", "a", "--assistant", "b"}, 2, "must end with a --message"},
		{[]string{"chat", "--model", modelPath, "--message", "a", "--chat-template", "vicuna"}, 2, `unknown chat template "vicuna"`},
		{[]string{"chat", "--model", modelPath, "--message", "a", "--chat-template", "model"}, 1, "the model has no chat template"},
		{[]string{"chat", "--model", modelPath, "--message", "a", "--chat-template-var", "novalue"}, 2, "want key=value"},
		{[]string{"generate", "--model", modelPath, "--system", "x"}, 2, "need --chat"},
	}
	for _, tt := range tests {
		_, errOut, code := graft(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("graft %v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}

// --chat-template-var reaches the spec, also over a --config file.
func TestTrainChatTemplateVars(t *testing.T) {
	cfg := writeFile(t, "run.json", `{"data": "x.jsonl", "steps": 3, "chat_template_vars": {"date_string": "26 Jul 2024", "enable_thinking": true}}`)
	printed, stderr, code := graft(t, "train", "--config", cfg, "--print-config", "--chat-template-var", "enable_thinking=false", "--chat-template-var", "n=3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var spec struct {
		Vars map[string]any `json:"chat_template_vars"`
	}
	if err := json.Unmarshal([]byte(printed), &spec); err != nil {
		t.Fatal(err)
	}
	if len(spec.Vars) != 3 || spec.Vars["date_string"] != "26 Jul 2024" || spec.Vars["enable_thinking"] != false || spec.Vars["n"] != 3.0 {
		t.Fatalf("vars %v in\n%s", spec.Vars, printed)
	}
}
