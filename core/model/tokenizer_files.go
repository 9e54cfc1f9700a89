package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tokenizer"
)

// A model's tokenizer travels with it when graft writes the model in the
// other format: a GGUF "gpt2" vocabulary becomes a tokenizer.json and a
// tokenizer_config.json, and a tokenizer.json whose pre-tokenizer llama.cpp
// implements becomes tokenizer.ggml.* metadata. The chat template goes
// along (GGUF tokenizer.chat_template, tokenizer_config.json chat_template).

// ggufChatTemplateKey is where GGUF files keep the chat template.
const ggufChatTemplateKey = "tokenizer.chat_template"

// hfTokenizerConfig is the part of tokenizer_config.json graft reads and
// writes.
type hfTokenizerConfig struct {
	AddBOSToken     *bool           `json:"add_bos_token,omitempty"`
	AddEOSToken     *bool           `json:"add_eos_token,omitempty"`
	BOSToken        json.RawMessage `json:"bos_token,omitempty"`
	EOSToken        json.RawMessage `json:"eos_token,omitempty"`
	CleanUpSpaces   *bool           `json:"clean_up_tokenization_spaces,omitempty"`
	ModelMaxLength  int             `json:"model_max_length,omitempty"`
	TokenizerClass  string          `json:"tokenizer_class,omitempty"`
	ChatTemplateRaw json.RawMessage `json:"chat_template,omitempty"`
}

// readHFTokenizerConfig reads dir/tokenizer_config.json; a missing file is
// no error (nil, nil).
func readHFTokenizerConfig(dir string) (*hfTokenizerConfig, error) {
	name := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c hfTokenizerConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &c, nil
}

// tokenText reads bos_token or eos_token, which transformers writes as a
// string or as an added-token object {"content": ...}.
func tokenText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, s != ""
	}
	var obj struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.Content, obj.Content != ""
	}
	return "", false
}

// chatTemplate is chat_template: a string, or a list of named templates of
// which the one named "default" is the model's.
func (c *hfTokenizerConfig) chatTemplate() (string, bool) {
	if c == nil || len(c.ChatTemplateRaw) == 0 {
		return "", false
	}
	var s string
	if json.Unmarshal(c.ChatTemplateRaw, &s) == nil {
		return s, s != ""
	}
	var named []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if json.Unmarshal(c.ChatTemplateRaw, &named) == nil {
		for _, t := range named {
			if t.Name == "default" {
				return t.Template, true
			}
		}
	}
	return "", false
}

// hfTokenizerFiles returns tokenizer.json and tokenizer_config.json for tok,
// or an error saying why tok has no tokenizer.json form.
func hfTokenizerFiles(tok tokenizer.Tokenizer, chatTemplate string, context int) (tokJSON, cfgJSON []byte, err error) {
	bpe, ok := tok.(*tokenizer.ByteLevelBPE)
	if !ok {
		return nil, nil, fmt.Errorf("the %s tokenizer is not converted to Hugging Face's format", tok.Kind())
	}
	if tokJSON, err = bpe.HFTokenizerJSON(); err != nil {
		return nil, nil, err
	}
	adds, no := tokenizer.AddsBOS(tok), false
	c := hfTokenizerConfig{
		AddBOSToken: &adds, AddEOSToken: &no, CleanUpSpaces: &no,
		ModelMaxLength: context, TokenizerClass: "PreTrainedTokenizerFast",
	}
	text := func(id int32) json.RawMessage {
		if id < 0 {
			return json.RawMessage("null")
		}
		b, _ := json.Marshal(tok.TokenString(id)) // a string always encodes
		return b
	}
	c.BOSToken, c.EOSToken = text(tok.BOS()), text(tok.EOS())
	if chatTemplate != "" {
		c.ChatTemplateRaw, _ = json.Marshal(chatTemplate)
	}
	if cfgJSON, err = json.MarshalIndent(c, "", "  "); err != nil {
		return nil, nil, err
	}
	return tokJSON, append(cfgJSON, '\n'), nil
}

// ggufTokenizerKVs returns the tokenizer.ggml.* metadata for tok, or an
// error saying why it has none.
func ggufTokenizerKVs(tok tokenizer.Tokenizer, chatTemplate string) ([]gguf.KV, error) {
	bpe, ok := tok.(*tokenizer.ByteLevelBPE)
	if !ok {
		return nil, fmt.Errorf("the %s tokenizer is not converted to GGUF", tok.Kind())
	}
	c, err := bpe.GGUFConfig()
	if err != nil {
		return nil, err
	}
	kvs := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "gpt2"},
		{Key: "tokenizer.ggml.pre", Value: c.Pre},
		{Key: "tokenizer.ggml.tokens", Value: c.Tokens},
		{Key: "tokenizer.ggml.token_type", Value: c.Types},
		{Key: "tokenizer.ggml.merges", Value: c.Merges},
	}
	for _, name := range ggufTokenIDNames {
		if id, ok := c.IDs[name]; ok {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + name + "_token_id", Value: id})
		}
	}
	if c.AddBOS != nil {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: *c.AddBOS})
	}
	kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: false})
	if chatTemplate != "" {
		kvs = append(kvs, gguf.KV{Key: ggufChatTemplateKey, Value: chatTemplate})
	}
	return kvs, nil
}
