package data

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/graft-ml/graft/core/tokenizer"
)

// Load reads a dataset file and tokenizes it, choosing the reader by
// extension: .jsonl and .json are records (JSON lines, or for .json also
// one array of records) passed through Tokenize; .txt is plain text passed
// through ReadText with opt.TextSeqLen. Errors name the path.
func Load(path string, tok tokenizer.Tokenizer, opt Options) ([]Example, error) {
	if opt.Name == "" {
		opt.Name = path
	}
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case ".jsonl", ".json", ".txt":
	default:
		return nil, fmt.Errorf("%s: unknown dataset extension %q (want .jsonl, .json or .txt)", path, ext)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The whole file is read first: its bytes are checked to be UTF-8,
	// which encoding/json would otherwise replace without a word.
	raw, err := io.ReadAll(io.LimitReader(f, maxTextFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opt.Name, err)
	}
	if len(raw) > maxTextFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", opt.Name, maxTextFile)
	}
	if raw, err = checkUTF8(raw, opt); err != nil {
		return nil, err
	}
	if ext == ".txt" {
		seqLen := opt.TextSeqLen
		if seqLen == 0 {
			seqLen = math.MaxInt
		}
		return ReadText(bytes.NewReader(raw), opt.Name, tok, seqLen)
	}
	recs, err := ReadJSON(bytes.NewReader(raw), opt.Name)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no records", opt.Name)
	}
	return Tokenize(recs, tok, opt)
}

// maxInvalidLines bounds the lines a warning about invalid UTF-8 lists.
const maxInvalidLines = 5

// checkUTF8 finds the lines of raw that are not valid UTF-8. Without
// opt.AllowInvalidUTF8 the first is an error naming the file, line,
// column and byte; with it opt.Warn hears of them, and raw is returned
// with each invalid byte replaced by U+FFFD (as encoding/json reads them,
// so plain text and records agree).
func checkUTF8(raw []byte, opt Options) ([]byte, error) {
	if utf8.Valid(raw) {
		return raw, nil
	}
	var lines []string
	bad := 0
	for i, line := range bytes.Split(raw, []byte("\n")) {
		if utf8.Valid(line) {
			continue
		}
		bad++
		col := firstInvalid(line)
		where := fmt.Sprintf("%s:%d:%d: invalid UTF-8 (byte 0x%02x)", opt.Name, i+1, col+1, line[col])
		if !opt.AllowInvalidUTF8 {
			return nil, fmt.Errorf("%s; convert the file to UTF-8 (iconv -f latin1 -t utf-8, say), "+
				"or read its invalid bytes as U+FFFD (allow_invalid_utf8, graft train --allow-invalid-utf8)", where)
		}
		if len(lines) < maxInvalidLines {
			lines = append(lines, where)
		}
	}
	if opt.Warn != nil {
		msg := strings.Join(lines, "; ")
		if bad > len(lines) {
			msg += fmt.Sprintf("; and %d more lines", bad-len(lines))
		}
		opt.Warn(msg + "; read as U+FFFD")
	}
	return fixUTF8(raw), nil
}

// firstInvalid is the offset of the first byte of b that does not start
// a valid UTF-8 sequence.
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return 0
}

// fixUTF8 replaces each invalid byte with U+FFFD, byte by byte as
// encoding/json does (bytes.ToValidUTF8 would merge a run into one).
func fixUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
