package tokenizer

import "unicode/utf8"

// StreamDecoder turns ids into text one at a time, as a generator produces
// them. Byte-fallback and byte-level tokens can split a character across
// several tokens, so it holds back an incomplete UTF-8 sequence at the end
// until the bytes that complete it arrive. Its total output equals
// Decode over the same ids.
type StreamDecoder struct {
	tok        Tokenizer
	stripSpace bool   // drop one leading space (SentencePiece space prefix)
	started    bool   // some non-empty bytes have been seen
	pending    []byte // bytes not yet returned
}

// NewStreamDecoder returns a StreamDecoder for t.
func NewStreamDecoder(t Tokenizer) *StreamDecoder {
	d := &StreamDecoder{tok: t}
	if s, ok := t.(leadingSpaceStripper); ok {
		d.stripSpace = s.stripsLeadingSpace()
	}
	return d
}

// Push adds one token and returns the text it completes, which may be empty.
func (d *StreamDecoder) Push(id int32) string {
	b := d.tok.TokenBytes(id)
	if len(b) == 0 {
		return ""
	}
	if !d.started {
		d.started = true
		if d.stripSpace && b[0] == ' ' {
			b = b[1:]
		}
	}
	d.pending = append(d.pending, b...)
	n := completeLen(d.pending)
	out := string(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out
}

// Flush returns whatever is held back, complete or not, and resets the
// decoder so that it can start a new sequence.
func (d *StreamDecoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	d.started = false
	return out
}

// completeLen is the length of the longest prefix of b that does not end in
// the beginning of a UTF-8 sequence that more bytes could still complete.
// Bytes that can never become valid UTF-8 count as complete: they are passed
// through as they are, exactly as Decode passes them.
func completeLen(b []byte) int {
	// A rune is at most utf8.UTFMax bytes, so only the last three bytes
	// can belong to an unfinished one.
	for k := 1; k < utf8.UTFMax && k <= len(b); k++ {
		start := len(b) - k
		if utf8.RuneStart(b[start]) {
			if !utf8.FullRune(b[start:]) {
				return start
			}
			return len(b)
		}
	}
	return len(b)
}
