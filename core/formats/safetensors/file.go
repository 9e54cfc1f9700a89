package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/graft-ml/graft/core/tensor"
)

// File is a parsed safetensors file. Its header has been validated; tensor
// data is read on demand. Reads are safe for concurrent use when the
// underlying io.ReaderAt is (an *os.File is).
type File struct {
	// Name identifies the file in error messages (its path when opened
	// with Open).
	Name string
	// Metadata is the header's __metadata__ map, nil when absent.
	Metadata map[string]string
	// Tensors lists every tensor sorted by name.
	Tensors []TensorInfo

	r         io.ReaderAt
	closer    io.Closer
	dataStart int64
	byName    map[string]int
}

// Parse reads and validates the header of a safetensors file of the given
// size held in r. name is used only in error messages.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("safetensors %s: file is %d bytes, too short for the 8-byte header length", name, size)
	}
	var lenBuf [8]byte
	if err := readFull(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header length: %w", name, err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors %s: header length %d exceeds the %d-byte limit", name, n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, fmt.Errorf("safetensors %s: header length %d but only %d bytes follow", name, n, size-8)
	}
	header := make([]byte, n) // bounded by both checks above
	if err := readFull(r, header, 8); err != nil {
		return nil, fmt.Errorf("safetensors %s: reading header: %w", name, err)
	}
	dataStart := 8 + int64(n)
	h, err := parseHeader(header, size-dataStart)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", name, err)
	}
	f := &File{
		Name:      name,
		Metadata:  h.metadata,
		Tensors:   h.tensors,
		r:         r,
		dataStart: dataStart,
		byName:    make(map[string]int, len(h.tensors)),
	}
	for i, t := range f.Tensors {
		f.byName[t.Name] = i
	}
	return f, nil
}

// Open opens and parses the safetensors file at path. The file stays open
// until Close.
func Open(path string) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	st, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(osf, st.Size(), path)
	if err != nil {
		osf.Close()
		return nil, err
	}
	f.closer = osf
	return f, nil
}

// Close releases the file opened by Open. It is a no-op for a File made by
// Parse, and safe to call more than once.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", f.Name, err)
	}
	return nil
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string {
	names := make([]string, len(f.Tensors))
	for i, t := range f.Tensors {
		names[i] = t.Name
	}
	return names
}

// Tensor returns the description of the named tensor.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return nil, false
	}
	return &f.Tensors[i], true
}

// ReadTensor reads the named tensor's data with a single ReadAt. It fails
// with ErrUnsupportedDType (wrapped) for dtypes graft cannot represent.
func (f *File) ReadTensor(name string) (*tensor.Tensor, error) {
	info, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", f.Name, name)
	}
	if info.DType == tensor.Invalid {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w %s", f.Name, name, ErrUnsupportedDType, info.DTypeName)
	}
	// The size was checked against the real file size while parsing.
	data := make([]byte, info.Size())
	if err := readFull(f.r, data, f.dataStart+info.Begin); err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", f.Name, name, err)
	}
	return &tensor.Tensor{Name: name, DType: info.DType, Shape: info.Shape.Clone(), Data: data}, nil
}

// TensorReader returns a reader over the named tensor's raw bytes, for
// streaming tensors too large to hold twice (for example converting a
// BF16 weight row by row). Unlike ReadTensor it works for any dtype.
func (f *File) TensorReader(name string) (*io.SectionReader, error) {
	info, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", f.Name, name)
	}
	return io.NewSectionReader(f.r, f.dataStart+info.Begin, info.Size()), nil
}

// readFull fills buf from r at off. io.ReaderAt may report io.EOF together
// with a complete read at the end of the input; that counts as success.
func readFull(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// sortedNames returns the keys of m in sorted order.
func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
