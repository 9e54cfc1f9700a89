package chattemplate

import (
	"fmt"
	"strings"
)

// Span is a byte range [Start, End) of a rendered text.
type Span struct{ Start, End int }

// RenderTraining renders a whole conversation for fine-tuning (no
// generation prompt) and returns, for each assistant message in order, the
// span of the text the model is to produce for it: from where the prompt
// rendered with a generation prompt ends, through the assistant's text, to
// the end of its end-of-turn marker. A newline the template prints after
// the marker is left out, as llama.cpp stops at the marker and never
// generates it.
//
// Templates mark no message boundaries themselves (only a few carry
// transformers' {% generation %} blocks), so the spans are found by
// rendering prefixes of the conversation, as TRL and transformers' own
// fallbacks do:
//
//   - the messages before the answer must render as a prefix of the whole
//     text; the start is where their rendering with add_generation_prompt
//     (the prompt the model sees at inference) stops agreeing with the
//     whole text, which is normally its end (Qwen3 with enable_thinking
//     false prompts with an empty <think></think> block that the
//     rendered history lacks: the span starts after the header then);
//   - the end is where the rendering of the conversation up to and
//     including the answer ends, when that is a prefix of the whole text,
//     cut back to the last end-of-turn marker (endMarkers: the spellings of
//     the tokenizer's end-of-generation tokens) within it. Some templates
//     render the last assistant message differently (Qwen3 gives it an
//     empty <think></think> block and drops earlier ones' reasoning); then
//     the end is the first end-of-turn marker after the start.
//
// An error names the template's source and the message.
func (t *Template) RenderTraining(msgs []Message, opt Options, endMarkers []string) (string, []Span, error) {
	opt.AddGenerationPrompt = false
	full, err := t.Render(msgs, opt)
	if err != nil {
		return "", nil, err
	}
	var spans []Span
	prevEnd := 0
	for i, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		fail := func(format string, a ...any) error {
			return fmt.Errorf("chat template from %s: assistant message %d: %s", t.source, i+1, fmt.Sprintf(format, a...))
		}
		before := ""
		if i > 0 {
			if before, err = t.Render(msgs[:i], opt); err != nil {
				return "", nil, fail("rendering the messages before it: %v", err)
			}
			if !strings.HasPrefix(full, before) {
				return "", nil, fail("the messages before it render differently when the conversation stops there (they agree with the whole only on the first %d of %d bytes)", commonPrefix(before, full), len(before))
			}
		}
		promptOpt := opt
		promptOpt.AddGenerationPrompt = true
		prompt, err := t.Render(msgs[:i], promptOpt)
		if err != nil {
			return "", nil, fail("rendering the prompt for it: %v", err)
		}
		start := max(commonPrefix(prompt, full), len(before))
		if start < prevEnd {
			return "", nil, fail("its prompt overlaps the previous answer")
		}
		upTo, err := t.Render(msgs[:i+1], opt)
		if err != nil {
			return "", nil, fail("rendering the conversation up to it: %v", err)
		}
		end := -1
		if strings.HasPrefix(full, upTo) && len(upTo) >= start {
			end = len(upTo)
			if e := lastMarkerEnd(full[start:end], endMarkers); e >= 0 {
				end = start + e
			}
		} else if e := firstMarkerEnd(full[start:], endMarkers); e >= 0 {
			end = start + e
		}
		if end < 0 {
			return "", nil, fail("cannot tell where it ends: the conversation up to it does not render as a prefix of the whole, and no end-of-turn marker (%s) follows it", quoteAll(endMarkers))
		}
		spans = append(spans, Span{start, end})
		prevEnd = end
	}
	return full, spans, nil
}

// commonPrefix is the length in bytes of the longest common prefix of a
// and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// lastMarkerEnd is the end of the last marker in s, or -1.
func lastMarkerEnd(s string, markers []string) int {
	best := -1
	for _, m := range markers {
		if m == "" {
			continue
		}
		if i := strings.LastIndex(s, m); i >= 0 && i+len(m) > best {
			best = i + len(m)
		}
	}
	return best
}

// firstMarkerEnd is the end of the first marker in s, or -1.
func firstMarkerEnd(s string, markers []string) int {
	best, bestAt := -1, len(s)+1
	for _, m := range markers {
		if m == "" {
			continue
		}
		if i := strings.Index(s, m); i >= 0 && i < bestAt {
			best, bestAt = i+len(m), i
		}
	}
	return best
}

func quoteAll(ss []string) string {
	if len(ss) == 0 {
		return "none known"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
