package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/tensor"
)

// headerEntry is one tensor's header record. Fields are declared in sorted
// order because the writer emits every JSON object with sorted keys.
type headerEntry struct {
	DataOffsets [2]int64 `json:"data_offsets"`
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
}

// Write encodes tensors and optional metadata as a safetensors stream.
//
// The output is deterministic: tensor data is laid out in sorted-name
// order, the header is compact JSON with every object's keys sorted, and it
// is padded with spaces to a multiple of 8 bytes so that the data section
// starts 8-byte aligned. Metadata is omitted from the header when empty;
// PEFT writes {"format": "pt"}.
func Write(w io.Writer, tensors []*tensor.Tensor, metadata map[string]string) error {
	sorted, err := sortAndCheck(tensors)
	if err != nil {
		return err
	}
	header, err := encodeHeader(sorted, metadata)
	if err != nil {
		return err
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("safetensors: writing header: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("safetensors: writing header: %w", err)
	}
	for _, t := range sorted {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("safetensors: writing tensor %q: %w", t.Name, err)
		}
	}
	return nil
}

// WriteFile writes a safetensors file atomically: the data goes to a
// temporary file in the same directory, which is synced and then renamed
// over path, so readers see either the old file or the complete new one.
func WriteFile(path string, tensors []*tensor.Tensor, metadata map[string]string) error {
	if err := writeFile(path, tensors, metadata); err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, tensors []*tensor.Tensor, metadata map[string]string) error {
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // discards the temporary file unless committed
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := Write(bw, tensors, metadata); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Commit()
}

// sortAndCheck returns the tensors sorted by name after checking that each
// is well formed, storable in safetensors, and uniquely named.
func sortAndCheck(tensors []*tensor.Tensor) ([]*tensor.Tensor, error) {
	sorted := make([]*tensor.Tensor, len(tensors))
	for i, t := range tensors {
		if t == nil {
			return nil, fmt.Errorf("safetensors: tensor %d is nil", i)
		}
		if !utf8.ValidString(t.Name) {
			// JSON would silently replace the bad bytes, renaming the tensor.
			return nil, fmt.Errorf("safetensors: tensor name %q is not valid UTF-8", t.Name)
		}
		if t.Name == metadataKey {
			return nil, fmt.Errorf("safetensors: tensor name %q is reserved", metadataKey)
		}
		if _, ok := safetensorsName(t.DType); !ok {
			return nil, fmt.Errorf("safetensors: tensor %q: dtype %v cannot be stored in safetensors", t.Name, t.DType)
		}
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
		sorted[i] = t
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].Name == sorted[i-1].Name {
			return nil, fmt.Errorf("safetensors: duplicate tensor name %q", sorted[i].Name)
		}
	}
	return sorted, nil
}

// encodeHeader returns the padded header for tensors already sorted by name.
func encodeHeader(sorted []*tensor.Tensor, metadata map[string]string) ([]byte, error) {
	top := make(map[string]any, len(sorted)+1)
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("safetensors: metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	if len(metadata) > 0 {
		top[metadataKey] = metadata
	}
	var offset int64
	for _, t := range sorted {
		name, _ := safetensorsName(t.DType)
		end := offset + int64(len(t.Data))
		top[t.Name] = headerEntry{
			DataOffsets: [2]int64{offset, end},
			DType:       name,
			Shape:       append([]int{}, t.Shape...), // [] rather than null for scalars
		}
		offset = end
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep names such as "a<b" readable; both forms are valid JSON
	if err := enc.Encode(top); err != nil {
		return nil, fmt.Errorf("safetensors: encoding header: %w", err)
	}
	header := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	for len(header)%8 != 0 {
		header = append(header, ' ')
	}
	if len(header) > MaxHeaderSize {
		return nil, errors.New("safetensors: header exceeds the size limit; too many tensors")
	}
	return header, nil
}
