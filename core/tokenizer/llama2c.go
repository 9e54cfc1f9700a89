package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// LoadLlama2C reads llama2.c's tokenizer.bin: an int32 max_token_length,
// then for each of vocabSize tokens a float32 score, an int32 byte length
// and the bytes, all little-endian. The file has no vocabulary size of its
// own, so the caller passes it (the model's vocab_size).
//
// llama2.c's exporter wrote '▁' as ' ' and BOS/EOS as "\n<s>\n" and
// "\n</s>\n"; they are turned back into SentencePiece's spelling ("▁",
// "<s>", "</s>"), matching the same vocabulary in a GGUF file. Ids follow
// llama2.c: UNK 0, BOS 1, EOS 2, bytes <0x00>..<0xFF>, and a space prefix.
func LoadLlama2C(data []byte, vocabSize int) (*SentencePiece, error) {
	if vocabSize <= 0 {
		return nil, fmt.Errorf("llama2.c tokenizer: vocabulary size %d", vocabSize)
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("llama2.c tokenizer: %d bytes, too short for the header", len(data))
	}
	maxLen := int32(binary.LittleEndian.Uint32(data))
	// Each token takes at least 8 bytes, which bounds what a corrupt
	// vocabSize can make us allocate.
	if rest := len(data) - 4; vocabSize > rest/8 {
		return nil, fmt.Errorf("llama2.c tokenizer: %d tokens cannot fit in %d bytes", vocabSize, rest)
	}
	if vocabSize < 3 {
		return nil, fmt.Errorf("llama2.c tokenizer: vocabulary size %d is too small for UNK, BOS and EOS", vocabSize)
	}
	c := SentencePieceConfig{
		Tokens:         make([]string, vocabSize),
		Scores:         make([]float32, vocabSize),
		Types:          make([]int32, vocabSize),
		BOS:            1,
		EOS:            2,
		UNK:            0,
		AddSpacePrefix: true,
	}
	off := 4
	for i := 0; i < vocabSize; i++ {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("llama2.c tokenizer: token %d: truncated at byte %d", i, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || int64(n) > int64(len(data)-off) {
			return nil, fmt.Errorf("llama2.c tokenizer: token %d: length %d exceeds the %d bytes left", i, n, len(data)-off)
		}
		if maxLen > 0 && n > maxLen {
			return nil, fmt.Errorf("llama2.c tokenizer: token %d: length %d exceeds max_token_length %d", i, n, maxLen)
		}
		tok := string(data[off : off+int(n)])
		off += int(n)
		c.Scores[i] = score
		switch i {
		case 0:
			c.Types[i] = TokenTypeUnknown
		case 1, 2:
			c.Types[i] = TokenTypeControl
			tok = strings.Trim(tok, "\n")
		default:
			if _, ok := parseByteToken(tok); ok {
				c.Types[i] = TokenTypeByte
			} else {
				c.Types[i] = TokenTypeNormal
				tok = strings.ReplaceAll(tok, " ", spaceMarker)
			}
		}
		c.Tokens[i] = tok
	}
	if off != len(data) {
		return nil, fmt.Errorf("llama2.c tokenizer: %d trailing bytes after %d tokens", len(data)-off, vocabSize)
	}
	sp, err := NewSentencePiece(c)
	if err != nil {
		return nil, fmt.Errorf("llama2.c tokenizer: %w", err)
	}
	return sp, nil
}
