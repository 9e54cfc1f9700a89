package data

import (
	"bytes"
	"fmt"

	"github.com/graft-ml/graft/core/chattemplate"
	"github.com/graft-ml/graft/core/tokenizer"
)

// jinjaChat renders conversations with the model's own Jinja template.
//
// Unlike the built-in templates, which encode piece by piece, the
// rendered text is encoded whole, as llama.cpp and transformers encode a
// chat prompt (special tokens cut out, SentencePiece's space prefix after
// each of them), so training sees the very ids inference does. The loss
// mask comes from the assistant spans of the text (chattemplate's
// RenderTraining): a token is a target when it starts inside a span, as
// transformers' return_assistant_tokens_mask maps character spans to
// tokens.
type jinjaChat struct {
	tmpl    *chattemplate.Template
	tok     tokenizer.Tokenizer
	opt     chattemplate.Options
	markers []string // end-of-generation tokens' spellings
}

func newJinjaChat(tok tokenizer.Tokenizer, source, text string, vars map[string]any) (*jinjaChat, error) {
	tmpl, err := chattemplate.Compile(source, text)
	if err != nil {
		return nil, err
	}
	spelling := func(id int32) string {
		if id < 0 {
			return ""
		}
		return tok.TokenString(id)
	}
	c := &jinjaChat{tmpl: tmpl, tok: tok,
		opt: chattemplate.Options{BOSToken: spelling(tok.BOS()), EOSToken: spelling(tok.EOS()), Vars: vars}}
	for _, id := range tokenizer.EndOfGeneration(tok) {
		if s := spelling(id); s != "" {
			c.markers = append(c.markers, s)
		}
	}
	return c, nil
}

func toTemplateMessages(msgs []Message) []chattemplate.Message {
	out := make([]chattemplate.Message, len(msgs))
	for i, m := range msgs {
		out[i] = chattemplate.Message{Role: m.Role, Content: m.Content}
	}
	return out
}

// prompt renders msgs with the generation prompt and encodes it.
func (c *jinjaChat) prompt(msgs []Message) ([]int32, error) {
	opt := c.opt
	opt.AddGenerationPrompt = true
	text, err := c.tmpl.Render(toTemplateMessages(msgs), opt)
	if err != nil {
		return nil, err
	}
	return c.encode(text), nil
}

// example renders a whole conversation for training, with the assistant
// spans as targets.
func (c *jinjaChat) example(msgs []Message) (Example, error) {
	text, spans, err := c.tmpl.RenderTraining(toTemplateMessages(msgs), c.opt, c.markers)
	if err != nil {
		return Example{}, err
	}
	ids := c.encode(text)
	loss, ok := c.alignLoss(text, ids, spans)
	if !ok {
		// The tokens do not spell the text back (an unknown-token stand-in,
		// say): encode span by span instead, which marks the targets
		// exactly at the cost of tokens that may differ at the edges.
		return encodeSegments(c.tok, c.segments(text, spans)), nil
	}
	if len(loss) > 0 {
		loss[0] = false
	}
	return Example{IDs: ids, Loss: loss}, nil
}

// encode tokenizes rendered text: special tokens cut out, and BOS first
// when the tokenizer adds one and the template did not print it already
// (llama.cpp's rule; a template printing bos_token gives one BOS, not two).
func (c *jinjaChat) encode(text string) []int32 {
	ids := c.tok.Encode(text, false)
	if bos := c.tok.BOS(); bos >= 0 && tokenizer.AddsBOS(c.tok) && (len(ids) == 0 || ids[0] != bos) {
		ids = append([]int32{bos}, ids...)
	}
	return ids
}

// alignLoss walks the tokens along the text and flags those that start
// inside a span. It reports false when the tokens do not spell the text.
func (c *jinjaChat) alignLoss(text string, ids []int32, spans []chattemplate.Span) ([]bool, bool) {
	loss := make([]bool, len(ids))
	pos, next := 0, 0
	for i, id := range ids {
		surface := c.tok.TokenBytes(id)
		if len(surface) == 0 {
			// Control tokens show nothing when decoded; in the text they
			// are their spelling.
			surface = []byte(c.tok.TokenString(id))
		}
		if i == 0 && id == c.tok.BOS() && !bytes.HasPrefix([]byte(text), surface) {
			continue // the BOS encode added
		}
		switch {
		case len(text)-pos >= len(surface) && text[pos:pos+len(surface)] == string(surface):
		case surface[0] == ' ' && len(text)-pos >= len(surface)-1 && text[pos:pos+len(surface)-1] == string(surface[1:]):
			// SentencePiece's space prefix, which is not in the text.
			surface = surface[1:]
		default:
			return nil, false
		}
		for next < len(spans) && spans[next].End <= pos {
			next++
		}
		loss[i] = next < len(spans) && spans[next].Start <= pos && len(surface) > 0
		pos += len(surface)
	}
	return loss, pos == len(text)
}

// segments cuts text at the span edges for encodeSegments. A leading BOS
// spelling is dropped when encodeSegments adds BOS itself.
func (c *jinjaChat) segments(text string, spans []chattemplate.Span) []segment {
	if bos := c.tok.BOS(); bos >= 0 && tokenizer.AddsBOS(c.tok) {
		if s := c.tok.TokenString(bos); s != "" && len(text) >= len(s) && text[:len(s)] == s {
			text = text[len(s):]
			for i := range spans {
				spans[i].Start = max(spans[i].Start-len(s), 0)
				spans[i].End = max(spans[i].End-len(s), 0)
			}
		}
	}
	var segs []segment
	pos := 0
	for _, s := range spans {
		segs = append(segs, textSeg(text[pos:s.Start], false), textSeg(text[s.Start:s.End], true))
		pos = s.End
	}
	return append(segs, textSeg(text[pos:], false))
}

// String names the template in errors.
func (c *jinjaChat) String() string { return fmt.Sprintf("the chat template from %s", c.tmpl.Source()) }
