package gguf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"

	"github.com/graft-ml/graft/core/tensor"
)

// ErrBigEndian reports a GGUF file written for big-endian machines, which
// graft does not read.
var ErrBigEndian = errors.New("big-endian GGUF is not supported")

// Open parses the GGUF file at path. The file stays open so that ReadTensor
// can read tensor data; call Close when done.
func Open(path string) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	st, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	f, err := Parse(osf, st.Size(), path)
	if err != nil {
		osf.Close()
		return nil, err
	}
	f.closer = osf
	return f, nil
}

// Parse decodes and validates the header of a GGUF file of size bytes read
// through r. name identifies the file in errors. Only the header is read;
// the returned File keeps r for ReadTensor.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	f, err := parse(r, size, name)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", name, err)
	}
	return f, nil
}

func parse(r io.ReaderAt, size int64, name string) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("negative file size %d", size)
	}
	c := &cursor{r: r, size: size}
	magic, err := c.next(4, "magic")
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		if legacy, ok := legacyFormats[string(magic)]; ok {
			return nil, legacy
		}
		return nil, fmt.Errorf("not a GGUF file: magic %q, want %q", magic, Magic)
	}
	version, err := c.u32("version")
	if err != nil {
		return nil, err
	}
	switch {
	case version >= 1 && version <= 3:
	case version&0xffff == 0 && bits.ReverseBytes32(version) >= 1 && bits.ReverseBytes32(version) <= 3:
		// A big-endian writer stored a small version number byte-swapped.
		return nil, ErrBigEndian
	default:
		return nil, fmt.Errorf("unsupported GGUF version %d", version)
	}
	c.wide = version >= 2
	f := &File{
		Name:      name,
		Version:   version,
		Size:      size,
		Alignment: DefaultAlignment,
		r:         r,
		kvIndex:   map[string]int{},
		tenIndex:  map[string]int{},
	}
	// Each tensor info is at least a name length, n_dims, a type and an
	// offset; each KV at least a key length, a type and a one-byte value.
	nTensors, err := c.boundedCount(c.countSize()+4+4+8, "tensor count")
	if err != nil {
		return nil, err
	}
	nKVs, err := c.boundedCount(c.countSize()+4+1, "metadata count")
	if err != nil {
		return nil, err
	}
	if err := f.readKVs(c, nKVs); err != nil {
		return nil, err
	}
	if err := f.readTensorInfos(c, nTensors); err != nil {
		return nil, err
	}
	dataOffset, ok := alignUp(c.off, int64(f.Alignment))
	if !ok {
		return nil, fmt.Errorf("data offset overflows")
	}
	f.DataOffset = dataOffset
	if err := f.placeTensors(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *File) readKVs(c *cursor, n int) error {
	f.KVs = make([]KV, 0, n)
	for i := range n {
		key, err := c.str("key")
		if err != nil {
			return fmt.Errorf("metadata %d: %w", i, err)
		}
		if _, dup := f.kvIndex[key]; dup {
			return fmt.Errorf("metadata %d: duplicate key %q", i, key)
		}
		t, err := c.u32("value type")
		if err != nil {
			return fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := c.readValue(valueType(t), 0)
		if err != nil {
			return fmt.Errorf("metadata %q: %w", key, err)
		}
		if key == KeyAlignment {
			if f.Alignment, err = alignmentOf(v); err != nil {
				return fmt.Errorf("metadata %q: %w", key, err)
			}
		}
		f.kvIndex[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
	}
	return nil
}

// maxAlignment bounds general.alignment; real files use 32 and anything near
// this is surely corrupt.
const maxAlignment = 1 << 30

// alignmentOf checks a general.alignment value: an unsigned or positive
// integer that is a power of two.
func alignmentOf(v any) (int, error) {
	a, ok := asUint(v)
	if !ok {
		return 0, fmt.Errorf("alignment must be a non-negative integer, have %T", v)
	}
	if a == 0 || a > maxAlignment || a&(a-1) != 0 {
		return 0, fmt.Errorf("alignment %d is not a power of two up to %d", a, maxAlignment)
	}
	return int(a), nil
}

func (f *File) readTensorInfos(c *cursor, n int) error {
	f.Tensors = make([]TensorInfo, 0, n)
	for i := range n {
		ti, err := readTensorInfo(c)
		if err != nil {
			if ti.Name != "" {
				return fmt.Errorf("tensor %d %q: %w", i, ti.Name, err)
			}
			return fmt.Errorf("tensor %d: %w", i, err)
		}
		if _, dup := f.tenIndex[ti.Name]; dup {
			return fmt.Errorf("tensor %d: duplicate tensor name %q", i, ti.Name)
		}
		f.tenIndex[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}
	return nil
}

// readTensorInfo decodes one tensor description. Offset is left relative
// to the data section; placeTensors makes it absolute.
func readTensorInfo(c *cursor) (TensorInfo, error) {
	var ti TensorInfo
	var err error
	if ti.Name, err = c.str("tensor name"); err != nil {
		return ti, err
	}
	nDims, err := c.u32("n_dims")
	if err != nil {
		return ti, err
	}
	if nDims > maxDims {
		return ti, fmt.Errorf("%d dimensions, at most %d allowed", nDims, maxDims)
	}
	ne := make([]int64, nDims)
	for d := range ne {
		v, err := c.count("dimension")
		if err != nil {
			return ti, err
		}
		if v > math.MaxInt64 || v > math.MaxInt {
			return ti, fmt.Errorf("dimension %d is %d, too large", d, v)
		}
		ne[d] = int64(v)
	}
	if ti.GGMLType, err = c.u32("tensor type"); err != nil {
		return ti, err
	}
	off, err := c.u64("tensor offset")
	if err != nil {
		return ti, err
	}
	if off > math.MaxInt64 {
		return ti, fmt.Errorf("offset %d too large", off)
	}
	ti.Offset = int64(off)
	ti.Shape = make(tensor.Shape, nDims)
	for d, v := range ne {
		ti.Shape[int(nDims)-1-d] = int(v)
	}
	n := ti.Shape.Numel()
	if n < 0 {
		return ti, fmt.Errorf("shape %v has too many elements", ti.Shape)
	}
	if ti.Size, err = ggmlTensorBytes(ti.GGMLType, n); err != nil {
		return ti, err
	}
	ti.DType = ggmlToDType[ti.GGMLType] // tensor.Invalid when graft cannot decode it
	return ti, nil
}

// placeTensors turns relative offsets absolute and checks that every
// tensor is aligned, lies inside the file and overlaps no other.
func (f *File) placeTensors() error {
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Offset%int64(f.Alignment) != 0 {
			return fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", ti.Name, ti.Offset, f.Alignment)
		}
		abs := f.DataOffset + ti.Offset
		if abs < f.DataOffset || abs > f.Size || ti.Size > f.Size-abs {
			return fmt.Errorf("tensor %q (%s): %d bytes at data offset %d (file offset %d) extend past the end of the %d-byte file", ti.Name, GGMLTypeName(ti.GGMLType), ti.Size, ti.Offset, abs, f.Size)
		}
		ti.Offset = abs
	}
	order := make([]*TensorInfo, len(f.Tensors))
	for i := range f.Tensors {
		order[i] = &f.Tensors[i]
	}
	slices.SortFunc(order, func(a, b *TensorInfo) int {
		switch {
		case a.Offset < b.Offset:
			return -1
		case a.Offset > b.Offset:
			return 1
		}
		return 0
	})
	// end and last track the furthest-reaching tensor seen so far, so an
	// overlap is found even when an empty tensor sits between the two.
	var end int64
	var last *TensorInfo
	for _, cur := range order {
		if cur.Size == 0 {
			continue
		}
		if last != nil && cur.Offset < end {
			return fmt.Errorf("tensors %q and %q overlap at file offset %d", last.Name, cur.Name, cur.Offset)
		}
		if e := cur.Offset + cur.Size; e > end {
			end, last = e, cur
		}
	}
	return nil
}

// alignUp rounds off up to a multiple of align, a power of two.
func alignUp(off, align int64) (int64, bool) {
	r := (off + align - 1) &^ (align - 1)
	return r, r >= off
}
