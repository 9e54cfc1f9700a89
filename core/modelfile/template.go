package modelfile

import (
	"errors"
	"regexp"
	"strings"
)

// ErrUnrecognisedTemplate is returned for a chat template whose format
// ConvertChatTemplate does not know: writing a TEMPLATE that lays turns
// out differently from the model's training would quietly spoil every
// answer, so the caller should leave TEMPLATE out and say so.
var ErrUnrecognisedTemplate = errors.New("chat template not recognised (known: Llama 3, ChatML as Qwen 2/2.5/3 and SmolLM2 use it, Gemma)")

// Template is a model's chat template converted for Ollama.
type Template struct {
	// Family is the format recognised: "llama3", "chatml" or "gemma".
	Family string
	// Text is the TEMPLATE: Go text/template over Ollama's .System and
	// .Messages (each with .Role and .Content).
	Text string
	// Stops are the PARAMETER stop sequences: the family's end-of-turn
	// marker and the marker that opens a turn, at which a model that
	// runs on into the next turn is cut.
	Stops []string
	// System is the system prompt the Jinja template inserts when a
	// conversation has none (Qwen 2.5's "You are Qwen...", SmolLM2's), for
	// a SYSTEM line: Ollama passes it as .System whenever the user gives
	// no system message. Empty when the template inserts none.
	System string
}

// The Go templates below are written so that Ollama renders a
// conversation ending in a user turn exactly as the model's Jinja
// template renders it with add_generation_prompt (less the BOS token,
// which Ollama's tokenizer adds): tested against graft's Jinja renderer
// on each family's own template. A conversation that ends in an assistant
// turn is left open, so that Ollama continues that turn. System messages
// reach the template joined in .System (Ollama collates them), so the
// loops skip them. Known differences: message text is not trimmed (Llama
// 3 and Gemma trim it; Go templates have no trim), and Llama 3.2's
// "Today Date" is the template's fallback date rather than today.

// chatMLTemplate has @THINK@ replaced by what opens a final assistant
// turn: nothing, or Qwen 3's empty thinking block, which its template
// writes before an answer that comes after the last user turn.
const chatMLTemplate = `{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if ne $m.Role "system" }}<|im_start|>{{ $m.Role }}
@THINK@{{ $m.Content }}
{{- if or (ne $m.Role "assistant") (not $last) }}<|im_end|>
{{ end }}
{{- end }}
{{- if and $last (ne $m.Role "assistant") }}<|im_start|>assistant
{{ end }}
{{- end }}`

// llama3Template has @SYSTEM@ replaced by the system block of the
// variant: always present with the knowledge-cutoff lines (3.1, 3.2,
// 3.3), or only with a system message (3.0).
const llama3Template = `@SYSTEM@
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if ne $m.Role "system" }}<|start_header_id|>{{ $m.Role }}<|end_header_id|>

{{ $m.Content }}
{{- if or (ne $m.Role "assistant") (not $last) }}<|eot_id|>{{ end }}
{{- end }}
{{- if and $last (ne $m.Role "assistant") }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- end }}`

const llama3DatedSystem = `<|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: @CUTOFF@
Today Date: @DATE@

{{ .System }}<|eot_id|>`

const llama3PlainSystem = `{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>{{ end }}`

// gemmaTemplate follows Gemma's: no system turn (the system text opens
// the first turn, then a blank line), "model" for the assistant.
const gemmaTemplate = `{{- $first := true }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if ne $m.Role "system" }}<start_of_turn>{{ if eq $m.Role "assistant" }}model{{ else }}{{ $m.Role }}{{ end }}
{{ if and $first $.System }}{{ $.System }}

{{ end }}{{ $m.Content }}
{{- if or (ne $m.Role "assistant") (not $last) }}<end_of_turn>
{{ end }}
{{- $first = false }}
{{- end }}
{{- if and $last (ne $m.Role "assistant") }}<start_of_turn>model
{{ end }}
{{- end }}`

var (
	// chatMLDefaultSystem finds a system prompt written out as a literal
	// in the template ('<|im_start|>system\nYou are ...<|im_end|>').
	chatMLDefaultSystem = regexp.MustCompile(`<\|im_start\|>system(?:\\n|\n)([^'"{}<\\]+)<\|im_end\|>`)
	llamaCutoff         = regexp.MustCompile(`Cutting Knowledge Date: ([A-Za-z0-9 ]+)`)
	llamaDate           = regexp.MustCompile(`set date_string = "([^"]+)"`)
)

// ConvertChatTemplate recognises a model's Jinja chat template by the
// markers of its format and returns the equivalent Ollama TEMPLATE,
// stop sequences and default system prompt. A template of another format
// gives ErrUnrecognisedTemplate.
func ConvertChatTemplate(jinja string) (Template, error) {
	has := func(s ...string) bool {
		for _, x := range s {
			if !strings.Contains(jinja, x) {
				return false
			}
		}
		return true
	}
	switch {
	case has("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"):
		system := llama3PlainSystem
		if m := llamaCutoff.FindStringSubmatch(jinja); m != nil {
			date := "26 Jul 2024" // the templates' own fallback
			if d := llamaDate.FindStringSubmatch(jinja); d != nil {
				date = d[1]
			}
			system = strings.NewReplacer("@CUTOFF@", m[1], "@DATE@", date).Replace(llama3DatedSystem)
		}
		return Template{
			Family: "llama3",
			Text:   strings.Replace(llama3Template, "@SYSTEM@", system, 1),
			Stops:  []string{"<|eot_id|>", "<|start_header_id|>"},
		}, nil
	case has("<|im_start|>", "<|im_end|>"):
		think := ""
		if has("<think>", "</think>") {
			think = "{{ if and $last (eq $m.Role \"assistant\") }}<think>\n\n</think>\n\n{{ end }}"
		}
		t := Template{Family: "chatml", Text: strings.Replace(chatMLTemplate, "@THINK@", think, 1), Stops: []string{"<|im_end|>", "<|im_start|>"}}
		if m := chatMLDefaultSystem.FindStringSubmatch(jinja); m != nil {
			t.System = strings.TrimSpace(m[1])
		}
		return t, nil
	case has("<start_of_turn>", "<end_of_turn>"):
		return Template{Family: "gemma", Text: gemmaTemplate, Stops: []string{"<end_of_turn>", "<start_of_turn>"}}, nil
	}
	return Template{}, ErrUnrecognisedTemplate
}
