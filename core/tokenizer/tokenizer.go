// Package tokenizer turns text into token ids and back for the two families
// of vocabularies graft's models use:
//
//   - SentencePiece-style BPE with byte fallback, as llama.cpp implements it
//     for GGUF files whose tokenizer.ggml.model is "llama" (and as llama2.c
//     stores it in tokenizer.bin), and
//   - byte-level BPE read from a Hugging Face tokenizer.json or from GGUF
//     metadata whose tokenizer.ggml.model is "gpt2" (GPT-2, Llama 3,
//     Qwen2 and Qwen3, SmolLM and relatives), the latter with llama.cpp's
//     pre-tokenizers and special-token rules, so that ids equal llama.cpp's.
//     Either converts to the other (GGUFConfig, HFTokenizerJSON).
//
// Both implement Tokenizer. The package reads no files itself: callers hand
// it bytes or already-decoded vocabulary arrays, which keeps it free of any
// dependency on file formats and lets it build for every target graft
// supports (native, GOOS=js and GOOS=wasip1).
//
// Encoding never fails: invalid UTF-8 is carried through as raw bytes
// (byte-level BPE) or byte-fallback tokens (SentencePiece), so a decode of
// the encoding gives back the input bytes.
package tokenizer

// Tokenizer converts between text and token ids.
//
// Implementations are safe for concurrent use once constructed, except
// that setters such as ByteLevelBPE.SetBOS must not race with encoding.
type Tokenizer interface {
	// Encode tokenizes text, with special and added tokens cut out of it
	// whole. addBOS asks for the model's beginning of sequence: BOS is
	// prepended when the vocabulary has one and the model's tokenizer adds
	// it (AddsBOS), as llama.cpp and transformers do.
	Encode(text string, addBOS bool) []int32
	// Decode turns a whole sequence back into text. It skips BOS, EOS and
	// other control tokens; for SentencePiece vocabularies that add a space
	// prefix it drops the single leading space that prefix introduced.
	Decode(ids []int32) string
	// TokenBytes is what one token contributes to streamed output: a
	// byte-fallback token gives its byte (possibly part of a multi-byte
	// UTF-8 sequence); control tokens and ids out of range give nil. The
	// slice is shared: callers must not modify it.
	TokenBytes(id int32) []byte
	// TokenString is the vocabulary entry as stored ("▁the", "Ġthe",
	// "<0x0A>"), or "" for an id out of range.
	TokenString(id int32) string
	// VocabSize is one more than the largest token id.
	VocabSize() int
	// BOS is the beginning-of-sequence id, or -1 when there is none.
	BOS() int32
	// EOS is the end-of-sequence id, or -1 when there is none.
	EOS() int32
	// Kind is KindSentencePiece or KindByteLevelBPE.
	Kind() string
}

// The values Tokenizer.Kind returns.
const (
	KindSentencePiece = "sentencepiece-bpe"
	KindByteLevelBPE  = "byte-level-bpe"
)

// AddsBOS reports whether t.Encode(text, true) starts with BOS: whether
// the model's own tokenizer adds one (GGUF tokenizer.ggml.add_bos_token,
// a tokenizer.json template). Text that is encoded piece by piece starts
// with BOS exactly when this says so.
func AddsBOS(t Tokenizer) bool {
	if a, ok := t.(interface{ AddsBOS() bool }); ok {
		return a.AddsBOS()
	}
	return t.BOS() >= 0
}

// EndOfGeneration lists the ids at which generation stops: EOS and the
// end-of-turn tokens (<|eot_id|>, <|im_end|>, <end_of_turn>, ...) that
// llama.cpp stops at. The slice must not be modified.
func EndOfGeneration(t Tokenizer) []int32 {
	if e, ok := t.(interface{ EndOfGeneration() []int32 }); ok {
		return e.EndOfGeneration()
	}
	if eos := t.EOS(); eos >= 0 {
		return []int32{eos}
	}
	return nil
}

// leadingSpaceStripper is implemented by tokenizers whose Decode drops one
// leading space (SentencePiece with a space prefix), so that StreamDecoder
// can apply the same rule and stay equal to Decode.
type leadingSpaceStripper interface {
	stripsLeadingSpace() bool
}

// decodeBytes concatenates TokenBytes over ids and applies the leading
// space rule. Both tokenizers define Decode through it, which is what
// guarantees StreamDecoder's output equals Decode.
func decodeBytes(t Tokenizer, ids []int32) string {
	var out []byte
	for _, id := range ids {
		out = append(out, t.TokenBytes(id)...)
	}
	if s, ok := t.(leadingSpaceStripper); ok && s.stripsLeadingSpace() && len(out) > 0 && out[0] == ' ' {
		out = out[1:]
	}
	return string(out)
}

var (
	_ Tokenizer = (*SentencePiece)(nil)
	_ Tokenizer = (*ByteLevelBPE)(nil)
)
