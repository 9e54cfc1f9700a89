package data

import (
	"fmt"

	"github.com/graft-ml/graft/core/tokenizer"
)

// Example is one tokenized training sequence.
type Example struct {
	IDs []int32
	// Loss[i] true: token IDs[i] is a training target, predicted from
	// IDs[:i]. Loss[0] is always false, since nothing predicts the first
	// token. len(Loss) == len(IDs).
	Loss []bool
}

// LossTokens counts the tokens of e that are training targets.
func (e Example) LossTokens() int {
	n := 0
	for _, l := range e.Loss {
		if l {
			n++
		}
	}
	return n
}

// Options controls how records become examples.
type Options struct {
	// AppendEOS appends the tokenizer's EOS, as a target, after "text",
	// "completion" and Alpaca "output", so the model learns to stop.
	// DefaultOptions turns it on; the zero Options leaves it off. Chat
	// records end each assistant turn with their template's own marker
	// instead.
	AppendEOS bool
	// ChatTemplate renders "messages" records: ChatAuto (or empty: the
	// model's own template when ModelChatTemplate is set, else ChatML
	// when the vocabulary has an <|im_start|> token and ChatSimple
	// otherwise), ChatModel, ChatML, ChatLlama2 or ChatSimple.
	ChatTemplate string
	// ModelChatTemplate is the model's own Jinja chat template
	// (model.Model.ChatTemplate) and ModelChatTemplateSource where it came
	// from, for errors. With the model's template only assistant turns
	// are targets: each answer and its end-of-turn token.
	ModelChatTemplate, ModelChatTemplateSource string
	// ChatTemplateVars are extra variables for the model's template, as
	// apply_chat_template's keyword arguments (enable_thinking,
	// date_string, ...); see chattemplate.Options.Vars.
	ChatTemplateVars map[string]any
	// Name is the dataset's name in errors ("data.jsonl:17: ..."); Load
	// sets it to the path when empty.
	Name string
	// TextSeqLen is the most tokens Load puts in one example cut from a
	// plain-text file (see ReadText); pass the trainer's sequence length
	// plus one. Zero keeps each paragraph whole.
	TextSeqLen int
	// AllowInvalidUTF8 lets Load read a file with bytes that are not
	// UTF-8: each is read as U+FFFD, as encoding/json does, and Warn is
	// told which lines hold them. Without it such a file is an error
	// naming the first such line.
	AllowInvalidUTF8 bool
	// Warn, when set, hears what Load lets pass but reports.
	Warn func(string)
}

// DefaultOptions returns the options for training: EOS appended, chat
// template chosen from the vocabulary.
func DefaultOptions() Options { return Options{AppendEOS: true} }

// segment is one piece of a rendered record: text to encode, or a single
// token id (id >= 0) such as a chat marker, with its loss flag.
type segment struct {
	text string
	id   int32
	loss bool
}

func textSeg(s string, loss bool) segment { return segment{text: s, id: -1, loss: loss} }
func idSeg(id int32, loss bool) segment   { return segment{id: id, loss: loss} }

// spacePrefixer is implemented by SentencePiece tokenizers, which prepend
// a space ('▁') to every text they encode.
type spacePrefixer interface{ AddSpacePrefix() bool }

// encodeSegments turns segments into an example, BOS first when the
// tokenizer has one.
//
// Each text segment is encoded on its own and the ids concatenated, rather
// than encoding the joined string: that way the boundary between, say, a
// prompt and its completion is also a token boundary, and the loss mask
// covers exactly the completion's tokens. Encoding the joined text could
// merge the last prompt characters with the first completion characters
// into one token that is neither prompt nor completion, and the prompt
// alone would not tokenize as a prefix of the whole. Adjacent text segments
// with the same loss flag are joined first, so splits happen only where the
// mask changes or a special token sits.
//
// SentencePiece tokenizers with a space prefix put '▁' in front of every
// text they encode, as if it began the document. For a segment that starts
// a sequence (after BOS) that is what the model saw in pretraining. For a
// later segment it reads as a space, so one leading space of the segment
// is dropped first: " Paris" and "Paris" as a completion both encode as
// "▁Paris". A later segment that starts with something else (a newline)
// still gets the space; generation prompts built with ChatPrompt go
// through the same path, so training and inference agree.
func encodeSegments(tok tokenizer.Tokenizer, segs []segment) Example {
	segs = joinSegments(segs)
	sp, ok := tok.(spacePrefixer)
	prefixes := ok && sp.AddSpacePrefix()
	var ex Example
	add := func(ids []int32, loss bool) {
		ex.IDs = append(ex.IDs, ids...)
		for range ids {
			ex.Loss = append(ex.Loss, loss)
		}
	}
	if bos := tok.BOS(); bos >= 0 && tokenizer.AddsBOS(tok) {
		add([]int32{bos}, false)
	}
	startOfText := true // no text encoded since the last BOS
	for _, s := range segs {
		if s.id >= 0 {
			add([]int32{s.id}, s.loss)
			if s.id == tok.BOS() {
				startOfText = true
			}
			continue
		}
		text := s.text
		if text == "" {
			continue
		}
		if prefixes && !startOfText && text[0] == ' ' {
			text = text[1:]
		}
		startOfText = false
		add(tok.Encode(text, false), s.loss)
	}
	if len(ex.Loss) > 0 {
		ex.Loss[0] = false
	}
	return ex
}

// joinSegments merges adjacent text segments that share a loss flag.
func joinSegments(segs []segment) []segment {
	out := make([]segment, 0, len(segs))
	for _, s := range segs {
		if n := len(out); n > 0 && s.id < 0 && out[n-1].id < 0 && out[n-1].loss == s.loss {
			out[n-1].text += s.text
			continue
		}
		out = append(out, s)
	}
	return out
}

// specialToken finds the id of a special token spelled s, or -1. It uses
// the tokenizer's own lookup when it has one and scans the vocabulary
// otherwise.
func specialToken(tok tokenizer.Tokenizer, s string) int32 {
	if l, ok := tok.(interface{ TokenID(string) (int32, bool) }); ok {
		if id, ok := l.TokenID(s); ok {
			return id
		}
		return -1
	}
	for id := range tok.VocabSize() {
		if tok.TokenString(int32(id)) == s {
			return int32(id)
		}
	}
	return -1
}

// where names a record in errors: "name:line", or "name: record #i" for
// records built in code without a line.
func where(name string, rec Record, index int) string {
	if name == "" {
		name = "data"
	}
	if rec.Line > 0 {
		return fmt.Sprintf("%s:%d", name, rec.Line)
	}
	return fmt.Sprintf("%s: record #%d", name, index+1)
}
