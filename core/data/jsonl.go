package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Message is one turn of a chat ({"role": ..., "content": ...}).
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Record is one line of a JSONL dataset in any of the shapes graft reads:
// {"text"}; {"prompt","completion"}; {"messages":[...]}; Alpaca's
// {"instruction","input","output"}.
type Record struct {
	Line        int       `json:"-"` // 1-based line number in the file
	Text        *string   `json:"text,omitempty"`
	Prompt      *string   `json:"prompt,omitempty"`
	Completion  *string   `json:"completion,omitempty"`
	Messages    []Message `json:"messages,omitempty"`
	Instruction *string   `json:"instruction,omitempty"`
	Input       *string   `json:"input,omitempty"`
	Output      *string   `json:"output,omitempty"`
}

// maxLine bounds one JSONL line, so a file without newlines cannot make the
// reader buffer without limit.
const maxLine = 64 << 20

// ReadJSONL parses a JSONL stream; name is used in errors. Blank lines are
// skipped. A line that is not a JSON object is an error naming its number.
func ReadJSONL(r io.Reader, name string) ([]Record, error) {
	return readJSONL(r, name, 1)
}

// readJSONL reads JSONL whose first line is numbered first.
func readJSONL(r io.Reader, name string, first int) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var out []Record
	for line := first; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var rec Record
		dec := json.NewDecoder(bytes.NewReader(text))
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s:%d: more than one JSON value on the line", name, line)
		}
		rec.Line = line
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// ReadJSONLFile reads a JSONL file.
func ReadJSONLFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadJSONL(f, path)
}

// ReadJSON reads either JSONL or a single JSON array of records (the shape
// many instruction datasets ship as .json, e.g. Alpaca's). The first
// non-blank byte decides: '[' means an array. Records of an array get the
// line their object starts on, so errors still point into the file.
func ReadJSON(r io.Reader, name string) ([]Record, error) {
	br := bufio.NewReader(r)
	line := 1 // of the first non-blank byte
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if b == '\n' {
			line++
		}
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
			continue
		}
		if err := br.UnreadByte(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if b != '[' {
			return readJSONL(br, name, line)
		}
		break
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return readJSONArray(data, name, line)
}

// readJSONArray decodes data, which starts with '[' on line first, as an
// array of records.
func readJSONArray(data []byte, name string, first int) ([]Record, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, first, err)
	}
	// line counts newlines incrementally, so numbering is linear overall.
	line, counted := first, 0
	lineAt := func(off int) int {
		for ; counted < off && counted < len(data); counted++ {
			if data[counted] == '\n' {
				line++
			}
		}
		return line
	}
	var out []Record
	for dec.More() {
		// Skip the separator and blanks so the line is the object's own.
		off := int(dec.InputOffset())
		for off < len(data) && bytes.IndexByte([]byte(" \t\r\n,"), data[off]) >= 0 {
			off++
		}
		at := lineAt(off)
		var rec Record
		if err := dec.Decode(&rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, at, err)
		}
		rec.Line = at
		out = append(out, rec)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, lineAt(int(dec.InputOffset())), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s:%d: data after the closing ']'", name, lineAt(int(dec.InputOffset())))
	}
	return out, nil
}

// Texts returns the "text" field of every record, failing on the first
// record without one.
func Texts(recs []Record, name string) ([]string, error) {
	out := make([]string, len(recs))
	for i, r := range recs {
		if r.Text == nil {
			return nil, fmt.Errorf("%s:%d: no \"text\" field", name, r.Line)
		}
		out[i] = *r.Text
	}
	return out, nil
}
