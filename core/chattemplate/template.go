// Package chattemplate renders a model's own chat template: the Jinja
// program a model ships in GGUF metadata (tokenizer.chat_template) or in
// its Hugging Face tokenizer_config.json (chat_template), which lays a
// conversation out in the exact text the model was trained on.
//
// Rendering follows transformers' apply_chat_template: a Jinja environment
// with trim_blocks and lstrip_blocks, the variables messages,
// add_generation_prompt, bos_token and eos_token plus any extra ones the
// caller passes (tools, enable_thinking, date_string, ...), and the
// functions raise_exception and strftime_now. The Jinja engine is
// github.com/ardanlabs/jinja, a pure-Go implementation made for chat
// templates, so the package builds for native, GOOS=js and GOOS=wasip1.
//
// Known difference from transformers: the engine's tojson with an indent
// (Llama 3.x prints tool definitions with tojson(indent=4)) sorts object
// keys and escapes <, > and & as \u003c..., where Python keeps the order
// given and the characters. Plain tojson (Qwen's tools) matches. graft
// passes no tools when it trains or chats, so its renderings are
// unaffected.
//
// Render gives the text a model is prompted with; RenderTraining also
// finds, for each assistant message, the part of the text the model is to
// produce (see Span), which is what fine-tuning puts the loss on.
package chattemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	source string
	text   string
	tmpl   *jinja.Template
}

// Compile parses a template. source says where the text came from
// ("model.gguf: tokenizer.chat_template"); every error names it.
func Compile(source, text string) (*Template, error) {
	t, err := jinja.Compile(text)
	if err != nil {
		return nil, fmt.Errorf("chat template from %s: %w", source, err)
	}
	return &Template{source: source, text: text, tmpl: t}, nil
}

// Source says where the template came from, as given to Compile.
func (t *Template) Source() string { return t.source }

// Text is the template's Jinja source.
func (t *Template) Text() string { return t.text }

// Options are the variables of one rendering besides the messages.
type Options struct {
	// AddGenerationPrompt ends the text with the header of an assistant
	// turn, so that the model's continuation is the answer.
	AddGenerationPrompt bool
	// BOSToken and EOSToken are the spellings of the tokenizer's BOS and
	// EOS tokens (bos_token, eos_token); many templates print bos_token
	// first.
	BOSToken, EOSToken string
	// Vars are further variables, as the keyword arguments of
	// transformers' apply_chat_template: tools, documents,
	// enable_thinking, date_string, ... Values are anything
	// encoding/json encodes; a json.RawMessage keeps the key order of
	// its objects for tojson.
	Vars map[string]any
}

// Render lays msgs out as the template does.
func (t *Template) Render(msgs []Message, opt Options) (string, error) {
	data, err := opt.values(msgs)
	if err != nil {
		return "", fmt.Errorf("chat template from %s: %w", t.source, err)
	}
	out, err := t.tmpl.RenderValues(data)
	if err != nil {
		return "", fmt.Errorf("chat template from %s: %w", t.source, err)
	}
	return out, nil
}

// values builds the template's variables. Messages are dicts with "role"
// then "content", as the JSON a conversation usually comes in.
func (opt Options) values(msgs []Message) (map[string]jinja.Value, error) {
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict()
		d.AsDict().Set("role", jinja.NewString(m.Role))
		d.AsDict().Set("content", jinja.NewString(m.Content))
		list[i] = d
	}
	data := make(map[string]jinja.Value, len(opt.Vars)+4)
	for k, v := range opt.Vars {
		// Every value goes through JSON, so that any Go value (YAML's
		// uint64s, structs) arrives as the JSON types Jinja knows.
		raw, ok := v.(json.RawMessage)
		if !ok {
			var err error
			if raw, err = json.Marshal(v); err != nil {
				return nil, fmt.Errorf("variable %s: %w", k, err)
			}
		}
		val, err := valueFromJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", k, err)
		}
		data[k] = val
	}
	data["messages"] = jinja.NewList(list)
	data["add_generation_prompt"] = jinja.NewBool(opt.AddGenerationPrompt)
	data["bos_token"] = jinja.NewString(opt.BOSToken)
	data["eos_token"] = jinja.NewString(opt.EOSToken)
	return data, nil
}

// valueFromJSON decodes JSON into a Jinja value, objects as ordered dicts
// in the order of their keys, so that tojson prints them as Python's
// json.dumps prints the dict transformers built from the same JSON.
func valueFromJSON(raw []byte) (jinja.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return jinja.Undefined(), err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jinja.Undefined(), errors.New("more than one JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (jinja.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return jinja.Undefined(), err
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			d := jinja.NewDict()
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return jinja.Undefined(), err
				}
				v, err := decodeValue(dec)
				if err != nil {
					return jinja.Undefined(), err
				}
				d.AsDict().Set(key.(string), v)
			}
			_, err := dec.Token() // '}'
			return d, err
		case '[':
			var items []jinja.Value
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return jinja.Undefined(), err
				}
				items = append(items, v)
			}
			_, err := dec.Token() // ']'
			return jinja.NewList(items), err
		}
		return jinja.Undefined(), fmt.Errorf("unexpected %v", tok)
	default:
		// nil, bool, string, json.Number
		return jinja.FromGoValue(tok), nil
	}
}
