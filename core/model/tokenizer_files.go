package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/formats/hfconfig"
	"github.com/graft-ml/graft/core/tokenizer"
)

// A model's tokenizer travels with it when graft writes the model in the
// other format: a GGUF "gpt2" vocabulary becomes a tokenizer.json and a
// tokenizer_config.json, and a tokenizer.json whose pre-tokenizer llama.cpp
// implements becomes tokenizer.ggml.* metadata; a GGUF "llama"
// (SentencePiece) vocabulary becomes the byte_fallback BPE tokenizer.json
// that transformers writes for Llama 2 and Gemma, and back. The chat template goes
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
	conv, ok := tok.(interface{ HFTokenizerJSON() ([]byte, error) })
	if !ok {
		return nil, nil, fmt.Errorf("the %s tokenizer is not converted to Hugging Face's format", tok.Kind())
	}
	if tokJSON, err = conv.HFTokenizerJSON(); err != nil {
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
	if sp, ok := tok.(*tokenizer.SentencePiece); ok {
		return ggufSentencePieceKVs(sp, chatTemplate), nil
	}
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

// hfSentencePiece reads a SentencePiece-style tokenizer.json (Llama 2,
// Mistral, Gemma) from dir, with BOS, EOS and add_bos_token as
// tokenizer_config.json (then config.json) sets them, as transformers
// does.
func hfSentencePiece(dir, name string, data []byte) (tokenizer.Tokenizer, error) {
	sp, err := tokenizer.ParseHFSentencePiece(data, name)
	if err != nil {
		return nil, err
	}
	c := sp.GGUFSentencePieceConfig()
	c.Types = slices.Clone(c.Types)
	lookup := func(text string) (int32, bool) {
		for i, t := range c.Tokens {
			if t == text {
				return int32(i), true
			}
		}
		return -1, false
	}
	cfg, err := readHFTokenizerConfig(dir)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if cfg != nil {
		if text, ok := tokenText(cfg.BOSToken); ok {
			if id, ok := lookup(text); ok {
				c.BOS = id
			}
		}
		if text, ok := tokenText(cfg.EOSToken); ok {
			if id, ok := lookup(text); ok {
				c.EOS = id
			}
		}
		if cfg.AddBOSToken != nil {
			c.OmitBOS = !*cfg.AddBOSToken
		}
	}
	if hc, err := hfconfig.Load(filepath.Join(dir, "config.json")); err == nil {
		n := int64(len(c.Tokens))
		if hc.BOSTokenID != nil && c.BOS < 0 && *hc.BOSTokenID >= 0 && int64(*hc.BOSTokenID) < n {
			c.BOS = int32(*hc.BOSTokenID)
		}
		if len(hc.EOSTokenID) > 0 && c.EOS < 0 && hc.EOSTokenID[0] >= 0 && int64(hc.EOSTokenID[0]) < n {
			c.EOS = int32(hc.EOSTokenID[0])
		}
	}
	tok, err := tokenizer.NewSentencePiece(c)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json %s: %w", name, err)
	}
	return tok, nil
}

// ggufSentencePieceKVs is sp as llama.cpp's converter writes a
// SentencePiece vocabulary: model "llama", pre "default", scores and
// token types, the special ids and the BOS and space-prefix rules.
func ggufSentencePieceKVs(sp *tokenizer.SentencePiece, chatTemplate string) []gguf.KV {
	c := sp.GGUFSentencePieceConfig()
	kvs := []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.pre", Value: "default"},
		{Key: "tokenizer.ggml.tokens", Value: c.Tokens},
		{Key: "tokenizer.ggml.scores", Value: c.Scores},
		{Key: "tokenizer.ggml.token_type", Value: c.Types},
	}
	for _, id := range []struct {
		key string
		id  int32
	}{{"bos", c.BOS}, {"eos", c.EOS}, {"unknown", c.UNK}} {
		if id.id >= 0 {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + id.key + "_token_id", Value: uint32(id.id)})
		}
	}
	kvs = append(kvs,
		gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: !c.OmitBOS},
		gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: false},
		gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: c.AddSpacePrefix},
	)
	if chatTemplate != "" {
		kvs = append(kvs, gguf.KV{Key: ggufChatTemplateKey, Value: chatTemplate})
	}
	return kvs
}
