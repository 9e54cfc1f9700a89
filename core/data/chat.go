package data

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graft-ml/graft/core/tokenizer"
)

// Chat templates for Options.ChatTemplate and ChatPrompt.
const (
	// ChatAuto, the default (as is ""), uses the model's own template
	// (Options.ModelChatTemplate) when it has one, and otherwise ChatML
	// when the vocabulary has an <|im_start|> token and ChatSimple when
	// not.
	ChatAuto = "auto"
	// ChatModel uses the model's own template and is an error when the
	// model has none.
	ChatModel = "model"
	// ChatML renders "<|im_start|>role\ncontent<|im_end|>\n" per message
	// (Qwen, many fine-tunes). The markers are single tokens when the
	// vocabulary has them and plain text otherwise. Assistant content and
	// its <|im_end|> are targets.
	ChatML = "chatml"
	// ChatLlama2 renders Llama-2-chat's format, one BOS ... EOS pair per
	// exchange: "<s>[INST] user [/INST] answer </s>", with a system
	// message folded into the first as "<<SYS>>\nsystem\n<</SYS>>\n\n"
	// before the user's text.
	// The answer and its EOS are targets. Messages must be an optional
	// system message, then user and assistant turns alternating.
	ChatLlama2 = "llama2"
	// ChatSimple renders "User: ...\nAssistant: ...\n" (and "System:
	// ...\n"), for small vocabularies without chat tokens such as
	// stories260K's. The answer and its closing newline are targets.
	ChatSimple = "simple"
)

// The roles a message may have.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// chatTemplate renders conversations for one template and tokenizer.
type chatTemplate struct {
	name string
	// render lays out msgs; with generation it ends with the assistant
	// header, ready for the model to continue.
	render func(msgs []Message, generation bool) ([]segment, error)
	// jinja, when set, is the model's own template, which encodes by
	// itself instead of through render.
	jinja *jinjaChat
}

// example renders and encodes a conversation for training.
func (t *chatTemplate) example(tok tokenizer.Tokenizer, msgs []Message) (Example, error) {
	if t.jinja != nil {
		return t.jinja.example(msgs)
	}
	segs, err := t.render(msgs, false)
	if err != nil {
		return Example{}, err
	}
	return encodeSegments(tok, segs), nil
}

// prompt renders and encodes a conversation for generation.
func (t *chatTemplate) prompt(tok tokenizer.Tokenizer, msgs []Message) ([]int32, error) {
	if t.jinja != nil {
		return t.jinja.prompt(msgs)
	}
	segs, err := t.render(msgs, true)
	if err != nil {
		return nil, err
	}
	return encodeSegments(tok, segs).IDs, nil
}

// checkTemplateName refuses a name no template has.
func checkTemplateName(name string) error {
	switch name {
	case "", ChatAuto, ChatModel, ChatML, ChatLlama2, ChatSimple:
		return nil
	}
	return fmt.Errorf("unknown chat template %q (want %s, %s, %s, %s or %s)", name, ChatAuto, ChatModel, ChatML, ChatLlama2, ChatSimple)
}

// resolveTemplate picks the template opt names and binds it to tok's
// special tokens. The model's own template is compiled here, so a dataset
// without "messages" never needs it.
func resolveTemplate(tok tokenizer.Tokenizer, opt Options) (*chatTemplate, error) {
	name := opt.ChatTemplate
	if err := checkTemplateName(name); err != nil {
		return nil, err
	}
	switch name {
	case "", ChatAuto:
		if opt.ModelChatTemplate != "" {
			name = ChatModel
			break
		}
		name = ChatSimple
		if specialToken(tok, "<|im_start|>") >= 0 {
			name = ChatML
		}
	case ChatModel:
		if opt.ModelChatTemplate == "" {
			return nil, errors.New(`chat template "model": the model has no chat template (GGUF tokenizer.chat_template, or chat_template in a Hugging Face tokenizer_config.json or chat_template.jinja)`)
		}
	}
	switch name {
	case ChatModel:
		source := opt.ModelChatTemplateSource
		if source == "" {
			source = "the model"
		}
		j, err := newJinjaChat(tok, source, opt.ModelChatTemplate, opt.ChatTemplateVars)
		if err != nil {
			return nil, err
		}
		return &chatTemplate{name: ChatModel, jinja: j}, nil
	case ChatML:
		return chatMLTemplate(tok), nil
	case ChatLlama2:
		return llama2Template(tok), nil
	default:
		return simpleTemplate(), nil
	}
}

// marker is a special token as one id when the vocabulary has it, and as
// its spelling otherwise.
func marker(tok tokenizer.Tokenizer, spelling string, id int32, loss bool) segment {
	if id < 0 {
		id = specialToken(tok, spelling)
	}
	if id >= 0 {
		return idSeg(id, loss)
	}
	return textSeg(spelling, loss)
}

func chatMLTemplate(tok tokenizer.Tokenizer) *chatTemplate {
	start := marker(tok, "<|im_start|>", -1, false)
	end := marker(tok, "<|im_end|>", -1, false)
	return &chatTemplate{name: ChatML, render: func(msgs []Message, generation bool) ([]segment, error) {
		var segs []segment
		for _, m := range msgs {
			train := m.Role == RoleAssistant
			endTurn := end
			endTurn.loss = train
			segs = append(segs, start, textSeg(m.Role+"\n", false), textSeg(m.Content, train), endTurn, textSeg("\n", false))
		}
		if generation {
			segs = append(segs, start, textSeg(RoleAssistant+"\n", false))
		}
		return segs, nil
	}}
}

func llama2Template(tok tokenizer.Tokenizer) *chatTemplate {
	bos := tok.BOS()
	eos := marker(tok, "</s>", tok.EOS(), true)
	return &chatTemplate{name: ChatLlama2, render: func(msgs []Message, generation bool) ([]segment, error) {
		system, skipped := "", 0
		if msgs[0].Role == RoleSystem {
			skipped = 1
			system = "<<SYS>>\n" + strings.TrimSpace(msgs[0].Content) + "\n<</SYS>>\n\n"
			msgs = msgs[1:]
		}
		var segs []segment
		for i, m := range msgs {
			want := RoleUser
			if i%2 == 1 {
				want = RoleAssistant
			}
			if m.Role != want {
				return nil, fmt.Errorf("llama2 chat template: message %d is %q, want %q (an optional system message first, then user and assistant alternating)", i+1+skipped, m.Role, want)
			}
			if want == RoleUser {
				// encodeSegments puts the first BOS; later exchanges
				// open with their own.
				if i > 0 && bos >= 0 {
					segs = append(segs, idSeg(bos, false))
				}
				segs = append(segs, textSeg("[INST] "+system+strings.TrimSpace(m.Content)+" [/INST]", false))
				system = ""
				continue
			}
			segs = append(segs, textSeg(" "+strings.TrimSpace(m.Content)+" ", true), eos)
		}
		if generation && len(msgs)%2 == 0 {
			return nil, errors.New("llama2 chat template: a generation prompt must end with a user message")
		}
		return segs, nil
	}}
}

func simpleTemplate() *chatTemplate {
	return &chatTemplate{name: ChatSimple, render: func(msgs []Message, generation bool) ([]segment, error) {
		var segs []segment
		for _, m := range msgs {
			switch m.Role {
			case RoleSystem:
				segs = append(segs, textSeg("System: "+m.Content+"\n", false))
			case RoleUser:
				segs = append(segs, textSeg("User: "+m.Content+"\n", false))
			default:
				segs = append(segs, textSeg("Assistant:", false), textSeg(" "+m.Content+"\n", true))
			}
		}
		if generation {
			segs = append(segs, textSeg("Assistant:", false))
		}
		return segs, nil
	}}
}

// checkMessages validates roles; it names messages 1-based.
func checkMessages(msgs []Message) error {
	if len(msgs) == 0 {
		return errors.New(`"messages" is empty`)
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleAssistant:
		default:
			return fmt.Errorf("message %d: unknown role %q (want system, user or assistant)", i+1, m.Role)
		}
	}
	return nil
}

// ChatPrompt renders a conversation for generation: every message, then
// the assistant header, so the model's continuation is the next answer.
// It tokenizes exactly as Tokenize does for training, so a fine-tuned
// model sees the same token boundaries at inference. The template is
// opt's (ChatTemplate, ModelChatTemplate, ChatTemplateVars); the other
// options do not apply.
func ChatPrompt(msgs []Message, tok tokenizer.Tokenizer, opt Options) ([]int32, error) {
	if tok == nil {
		return nil, errors.New("chat prompt: nil tokenizer")
	}
	if err := checkMessages(msgs); err != nil {
		return nil, fmt.Errorf("chat prompt: %w", err)
	}
	t, err := resolveTemplate(tok, opt)
	if err != nil {
		return nil, fmt.Errorf("chat prompt: %w", err)
	}
	ids, err := t.prompt(tok, msgs)
	if err != nil {
		return nil, fmt.Errorf("chat prompt: %w", err)
	}
	return ids, nil
}

// ChatTemplateName says which template opt picks for tok: "model" (with
// the template's source), chatml, llama2 or simple. It is for messages
// to the user; an invalid choice gives the error Tokenize would.
func ChatTemplateName(tok tokenizer.Tokenizer, opt Options) (string, error) {
	if err := checkTemplateName(opt.ChatTemplate); err != nil {
		return "", err
	}
	switch {
	case opt.ChatTemplate == ChatModel || (opt.ChatTemplate == "" || opt.ChatTemplate == ChatAuto) && opt.ModelChatTemplate != "":
		if opt.ModelChatTemplateSource != "" {
			return "the model's own (" + opt.ModelChatTemplateSource + ")", nil
		}
		return "the model's own", nil
	case opt.ChatTemplate == "" || opt.ChatTemplate == ChatAuto:
		if specialToken(tok, "<|im_start|>") >= 0 {
			return ChatML, nil
		}
		return ChatSimple, nil
	}
	return opt.ChatTemplate, nil
}
