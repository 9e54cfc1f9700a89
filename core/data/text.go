package data

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/graft-ml/graft/core/tokenizer"
)

// maxTextFile bounds a plain-text dataset read into memory at once.
const maxTextFile = 1 << 30

// ReadText reads a plain-text dataset: paragraphs separated by blank lines,
// each tokenized BOS first, every token after BOS a target. No EOS is
// added: as in llama2.c's pretraining data, the next paragraph's BOS marks
// the boundary.
//
// A paragraph longer than seqLen tokens is cut into examples of at most
// seqLen tokens. Consecutive pieces overlap by one token, which is context
// only in the later piece, so every token is a target exactly once. Pass
// the trainer's sequence length plus one, so a piece fills one row.
// Paragraphs that leave nothing to train on (a lone token when the
// tokenizer has no BOS) are skipped; a text with no paragraphs is an
// error.
func ReadText(r io.Reader, name string, tok tokenizer.Tokenizer, seqLen int) ([]Example, error) {
	if tok == nil {
		return nil, fmt.Errorf("%s: nil tokenizer", name)
	}
	if seqLen < 2 {
		return nil, fmt.Errorf("%s: sequence length %d, want at least 2", name, seqLen)
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxTextFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(raw) > maxTextFile {
		return nil, fmt.Errorf("%s: larger than %d bytes; split it or use JSONL", name, maxTextFile)
	}
	var out []Example
	for _, p := range paragraphs(string(raw)) {
		ids := tok.Encode(p, true)
		out = appendPieces(out, ids, seqLen)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", name, errors.New("no text to train on"))
	}
	return out, nil
}

// paragraphs splits text on blank (whitespace-only) lines, keeping the
// newlines inside a paragraph. CRLF line ends become LF.
func paragraphs(text string) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var out []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, "\n"))
			cur = cur[:0]
		}
	}
	for line := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return out
}

// appendPieces cuts ids into examples of at most seqLen tokens that overlap
// by one, each with a target on every token but its first.
func appendPieces(out []Example, ids []int32, seqLen int) []Example {
	if len(ids) < 2 {
		return out
	}
	for start := 0; ; start += seqLen - 1 {
		end := min(start+seqLen, len(ids))
		piece := Example{IDs: ids[start:end:end], Loss: make([]bool, end-start)}
		for i := 1; i < len(piece.Loss); i++ {
			piece.Loss[i] = true
		}
		out = append(out, piece)
		if end == len(ids) {
			return out
		}
	}
}
