package gguf

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// cursor reads the header sequentially through an io.ReaderAt, buffering a
// window at a time so that a large file is never read into memory whole.
// Every read is checked against the bytes that remain in the file.
type cursor struct {
	r        io.ReaderAt
	size     int64 // size of the whole file
	off      int64 // offset of the next byte to read
	buf      []byte
	bufStart int64 // file offset of buf[0]
	wide     bool  // lengths and counts are uint64 (v2+) rather than uint32 (v1)
}

const cursorWindow = 64 << 10

// remaining is the number of bytes after the read position.
func (c *cursor) remaining() int64 { return c.size - c.off }

// next returns the next n bytes; the slice is valid until the next call.
func (c *cursor) next(n int64, what string) ([]byte, error) {
	if n < 0 || n > c.remaining() {
		return nil, fmt.Errorf("reading %s at offset %d: need %d bytes, %d remain: %w", what, c.off, n, c.remaining(), io.ErrUnexpectedEOF)
	}
	start := c.off - c.bufStart
	if c.off < c.bufStart || start+n > int64(len(c.buf)) {
		// Refill: at least n bytes, up to a window, never past the end.
		want := min(max(n, cursorWindow), c.remaining())
		if int64(cap(c.buf)) >= want {
			c.buf = c.buf[:want]
		} else {
			c.buf = make([]byte, want)
		}
		got, err := c.r.ReadAt(c.buf, c.off)
		if int64(got) < n {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading %s at offset %d: %w", what, c.off, err)
		}
		c.buf = c.buf[:got]
		c.bufStart = c.off
		start = 0
	}
	c.off += n
	return c.buf[start : start+n], nil
}

func (c *cursor) u8(what string) (uint8, error) {
	b, err := c.next(1, what)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (c *cursor) u16(what string) (uint16, error) {
	b, err := c.next(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (c *cursor) u32(what string) (uint32, error) {
	b, err := c.next(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (c *cursor) u64(what string) (uint64, error) {
	b, err := c.next(8, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// count reads a length or count: uint32 in GGUF v1, uint64 later.
func (c *cursor) count(what string) (uint64, error) {
	if !c.wide {
		v, err := c.u32(what)
		return uint64(v), err
	}
	return c.u64(what)
}

// countSize is the encoded size of a length or count.
func (c *cursor) countSize() int64 {
	if c.wide {
		return 8
	}
	return 4
}

// boundedCount reads a count of items that each take at least minItemBytes
// in the file, and rejects it unless that many items fit in what remains.
// This is what keeps a corrupt count from becoming a huge allocation.
func (c *cursor) boundedCount(minItemBytes int64, what string) (int, error) {
	at := c.off
	n, err := c.count(what)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/uint64(minItemBytes) || n > math.MaxInt || int64(n)*minItemBytes > c.remaining() {
		return 0, fmt.Errorf("%s %d at offset %d exceeds the %d bytes that remain", what, n, at, c.remaining())
	}
	return int(n), nil
}

func (c *cursor) str(what string) (string, error) {
	n, err := c.boundedCount(1, what+" length")
	if err != nil {
		return "", err
	}
	b, err := c.next(int64(n), what)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
