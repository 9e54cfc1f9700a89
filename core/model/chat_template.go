package model

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-ml/graft/core/formats/gguf"
)

// hfChatTemplateFile is where transformers (since 4.47) saves a chat
// template beside tokenizer_config.json; it wins over the config's
// chat_template when both are there, as in transformers.
const hfChatTemplateFile = "chat_template.jinja"

// ChatTemplate returns the model's own chat template, the Jinja source its
// files carry, and where it was found ("model.gguf:
// tokenizer.chat_template", "dir/chat_template.jinja",
// "dir/tokenizer_config.json: chat_template"), or empty strings when the
// model has none. Only an unreadable tokenizer_config.json is an error.
func (m *Model) ChatTemplate() (text, source string, err error) {
	switch m.Source {
	case "gguf":
		for _, kv := range m.SourceMetadata {
			if s, ok := kv.Value.(string); ok && kv.Key == ggufChatTemplateKey && s != "" {
				return s, m.SourcePath + ": " + ggufChatTemplateKey, nil
			}
		}
	case "hf":
		return hfChatTemplate(m.SourcePath)
	}
	return "", "", nil
}

// hfChatTemplate reads a Hugging Face directory's chat template.
func hfChatTemplate(dir string) (text, source string, err error) {
	name := filepath.Join(dir, hfChatTemplateFile)
	data, err := os.ReadFile(name)
	switch {
	case err == nil:
		return string(data), name, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", "", err
	}
	cfg, err := readHFTokenizerConfig(dir)
	if err != nil {
		return "", "", err
	}
	if s, ok := cfg.chatTemplate(); ok {
		return s, fmt.Sprintf("%s: chat_template", filepath.Join(dir, "tokenizer_config.json")), nil
	}
	return "", "", nil
}

// ChatTemplateAt returns the chat template of the model at path (a GGUF
// file or a Hugging Face directory) as ChatTemplate does, reading only
// the GGUF header or the tokenizer files, not the weights.
func ChatTemplateAt(path string) (text, source string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	if st.IsDir() {
		return hfChatTemplate(path)
	}
	f, err := gguf.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	if s, ok := f.String(ggufChatTemplateKey); ok && s != "" {
		return s, path + ": " + ggufChatTemplateKey, nil
	}
	return "", "", nil
}
