package data

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graft-ml/graft/core/tokenizer"
)

// The shapes a record can take.
const (
	shapeText       = "text"
	shapeCompletion = "prompt/completion"
	shapeChat       = "messages"
	shapeAlpaca     = "instruction/output"
)

// The standard Alpaca prompts (Stanford Alpaca's PROMPT_DICT), with and
// without an input.
const (
	alpacaPromptInput = "Below is an instruction that describes a task, paired with an input that provides further context. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:\n"
	alpacaPromptNoInput = "Below is an instruction that describes a task. " +
		"Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n%s\n\n### Response:\n"
)

// Tokenize turns records into examples, one per record and in order, with
// loss masks by shape:
//
//   - {"text"}: every token after BOS is a target (and EOS, with
//     opt.AppendEOS).
//   - {"prompt","completion"}: only the completion's tokens (and EOS).
//   - {"messages"}: rendered with opt.ChatTemplate (by default the
//     model's own, opt.ModelChatTemplate); only assistant turns, their
//     content and end-of-turn marker, are targets.
//   - {"instruction","input","output"}: the Alpaca prompt, with only the
//     output (and EOS) as targets. "input" may be missing or empty.
//
// A record that matches no shape or mixes two, or that leaves nothing to
// train on, is an error naming its line ("data.jsonl:17: ...").
func Tokenize(recs []Record, tok tokenizer.Tokenizer, opt Options) ([]Example, error) {
	if tok == nil {
		return nil, errors.New("data: nil tokenizer")
	}
	if err := checkTemplateName(opt.ChatTemplate); err != nil {
		return nil, fmt.Errorf("%s: %w", nameOr(opt.Name), err)
	}
	var chat *chatTemplate // resolved at the first "messages" record
	out := make([]Example, 0, len(recs))
	for i, rec := range recs {
		var ex Example
		if shape, err := recordShape(rec); err == nil && shape == shapeChat {
			if chat == nil {
				if chat, err = resolveTemplate(tok, opt); err != nil {
					return nil, fmt.Errorf("%s: %w", nameOr(opt.Name), err)
				}
			}
			if err := checkMessages(rec.Messages); err != nil {
				return nil, fmt.Errorf("%s: %w", where(opt.Name, rec, i), err)
			}
			if ex, err = chat.example(tok, rec.Messages); err != nil {
				return nil, fmt.Errorf("%s: %w", where(opt.Name, rec, i), err)
			}
		} else {
			segs, err := render(rec, tok, opt)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where(opt.Name, rec, i), err)
			}
			ex = encodeSegments(tok, segs)
		}
		if ex.LossTokens() == 0 {
			return nil, fmt.Errorf("%s: nothing to train on: the %s record has no target tokens", where(opt.Name, rec, i), shapeOf(rec))
		}
		out = append(out, ex)
	}
	return out, nil
}

func nameOr(name string) string {
	if name == "" {
		return "data"
	}
	return name
}

// render checks a record's shape and lays it out as segments; chat
// records are Tokenize's.
func render(rec Record, tok tokenizer.Tokenizer, opt Options) ([]segment, error) {
	shape, err := recordShape(rec)
	if err != nil {
		return nil, err
	}
	eos := func(segs []segment) []segment {
		if opt.AppendEOS && tok.EOS() >= 0 {
			segs = append(segs, idSeg(tok.EOS(), true))
		}
		return segs
	}
	switch shape {
	case shapeText:
		return eos([]segment{textSeg(*rec.Text, true)}), nil
	case shapeCompletion:
		return eos([]segment{textSeg(*rec.Prompt, false), textSeg(*rec.Completion, true)}), nil
	case shapeAlpaca:
		var prompt string
		if rec.Input != nil && *rec.Input != "" {
			prompt = fmt.Sprintf(alpacaPromptInput, *rec.Instruction, *rec.Input)
		} else {
			prompt = fmt.Sprintf(alpacaPromptNoInput, *rec.Instruction)
		}
		return eos([]segment{textSeg(prompt, false), textSeg(*rec.Output, true)}), nil
	}
	return nil, fmt.Errorf("%s record rendered as plain segments", shape)
}

// shapeOf names a record's shape for messages, or "unknown".
func shapeOf(rec Record) string {
	s, err := recordShape(rec)
	if err != nil {
		return "unknown"
	}
	return s
}

// recordShape decides which shape a record has from the fields present.
func recordShape(rec Record) (string, error) {
	var shapes []string
	if rec.Text != nil {
		shapes = append(shapes, shapeText)
	}
	if rec.Prompt != nil || rec.Completion != nil {
		shapes = append(shapes, shapeCompletion)
	}
	if rec.Messages != nil {
		shapes = append(shapes, shapeChat)
	}
	if rec.Instruction != nil || rec.Input != nil || rec.Output != nil {
		shapes = append(shapes, shapeAlpaca)
	}
	switch len(shapes) {
	case 0:
		return "", errors.New(`record has none of the known shapes: {"text"}, {"prompt","completion"}, {"messages"} or {"instruction","input","output"}`)
	case 1:
	default:
		return "", fmt.Errorf("record mixes shapes (%s); use one per line", strings.Join(shapes, ", "))
	}
	switch shapes[0] {
	case shapeCompletion:
		if rec.Prompt == nil {
			return "", errors.New(`"completion" without "prompt"`)
		}
		if rec.Completion == nil {
			return "", errors.New(`"prompt" without "completion"`)
		}
	case shapeAlpaca:
		if rec.Instruction == nil {
			return "", errors.New(`Alpaca record without "instruction"`)
		}
		if rec.Output == nil {
			return "", errors.New(`Alpaca record without "output"`)
		}
	}
	return shapes[0], nil
}
