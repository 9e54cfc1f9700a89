package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

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
	if ext == ".txt" {
		seqLen := opt.TextSeqLen
		if seqLen == 0 {
			seqLen = math.MaxInt
		}
		return ReadText(f, opt.Name, tok, seqLen)
	}
	recs, err := ReadJSON(f, opt.Name)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: no records", opt.Name)
	}
	return Tokenize(recs, tok, opt)
}
