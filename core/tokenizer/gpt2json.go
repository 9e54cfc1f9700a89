package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// gpt2EndOfText is GPT-2's only special token.
const gpt2EndOfText = "<|endoftext|>"

// BuildGPT2TokenizerJSON converts OpenAI's original GPT-2 files, encoder.json
// (byte-level token -> id) and vocab.bpe (a "#version" line, then one merge
// "a b" per line in rank order), into a Hugging Face tokenizer.json: BPE
// model, ByteLevel pre-tokenizer, post-processor and decoder, and
// <|endoftext|> (id 50256 in GPT-2) as a special added token.
func BuildGPT2TokenizerJSON(encoderJSON, vocabBPE []byte) ([]byte, error) {
	var vocab map[string]int64
	if err := json.Unmarshal(encoderJSON, &vocab); err != nil {
		return nil, fmt.Errorf("gpt2 encoder.json: %w", err)
	}
	eot, ok := vocab[gpt2EndOfText]
	if !ok {
		return nil, fmt.Errorf("gpt2 encoder.json: no %s token", gpt2EndOfText)
	}
	var merges []string
	sc := bufio.NewScanner(bytes.NewReader(vocabBPE))
	sc.Buffer(nil, 1<<20)
	for line := 0; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || (line == 0 && strings.HasPrefix(text, "#version")) {
			continue
		}
		if a, b, ok := strings.Cut(text, " "); !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("gpt2 vocab.bpe: line %d: %q is not a merge \"a b\"", line+1, text)
		}
		merges = append(merges, text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gpt2 vocab.bpe: %w", err)
	}

	// The vocab is written in id order, as HF does, so the file reads well.
	type entry struct {
		tok string
		id  int64
	}
	entries := make([]entry, 0, len(vocab))
	for tok, id := range vocab {
		entries = append(entries, entry{tok, id})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].id != entries[j].id {
			return entries[i].id < entries[j].id
		}
		return entries[i].tok < entries[j].tok
	})

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<|endoftext|>" readable
	str := func(s string) {
		_ = enc.Encode(s)           // encoding a string into a bytes.Buffer cannot fail
		buf.Truncate(buf.Len() - 1) // Encode ends each value with '\n'
	}
	buf.WriteString(`{"version":"1.0","truncation":null,"padding":null,"added_tokens":[`)
	fmt.Fprintf(&buf, `{"id":%d,"content":`, eot)
	str(gpt2EndOfText)
	buf.WriteString(`,"single_word":false,"lstrip":false,"rstrip":false,"normalized":true,"special":true}],`)
	buf.WriteString(`"normalizer":null,`)
	buf.WriteString(`"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},`)
	buf.WriteString(`"post_processor":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":false,"use_regex":true},`)
	buf.WriteString(`"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},`)
	buf.WriteString(`"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":"","fuse_unk":false,"byte_fallback":false,"vocab":{`)
	for i, e := range entries {
		if i > 0 {
			buf.WriteByte(',')
		}
		str(e.tok)
		fmt.Fprintf(&buf, ":%d", e.id)
	}
	buf.WriteString(`},"merges":[`)
	for i, m := range merges {
		if i > 0 {
			buf.WriteByte(',')
		}
		str(m)
	}
	buf.WriteString("]}}\n")
	return buf.Bytes(), nil
}
