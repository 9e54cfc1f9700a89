package cpu

import (
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

func TestName(t *testing.T) {
	for threads, want := range map[int]string{0: "cpu (1 thread, ", 1: "cpu (1 thread, ", 4: "cpu (4 threads, "} {
		want += Kernels() + ")"
		if got := NewWithThreads(threads).Name(); got != want {
			t.Errorf("NewWithThreads(%d).Name() = %q, want %q", threads, got, want)
		}
	}
	if New().Threads() < 1 {
		t.Error("New() has no threads")
	}
}

// TestLoadRead loads every dtype and reads ranges back, including ranges
// that start and end inside a quantization block.
func TestLoadRead(t *testing.T) {
	const rows, cols = 3, 64
	vals := randn(newRand(20), rows*cols, 2)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.Q8_0, tensor.Q4_0} {
		t.Run(dt.String(), func(t *testing.T) {
			c := New()
			b, dec := uploadAs(t, c, dt, vals, rows, cols)
			if b.DType() != dt || !b.Shape().Equal(tensor.Shape{rows, cols}) {
				t.Fatalf("loaded %v %v, want %v [%d %d]", b.DType(), b.Shape(), dt, rows, cols)
			}
			for _, r := range [][2]int{{0, rows * cols}, {5, 40}, {33, 1}, {100, 92}, {rows * cols, 0}} {
				got := make([]float32, r[1])
				if err := c.Read(b, r[0], got); err != nil {
					t.Fatal(err)
				}
				assertClose(t, "read", got, to64(dec[r[0]:r[0]+r[1]]), 0, 0)
			}
			if err := c.Read(b, 100, make([]float32, 93)); err == nil {
				t.Error("read past the end succeeded")
			}
		})
	}
}

func TestLoadKeepsItsOwnCopy(t *testing.T) {
	c := New()
	data := make([]byte, 8)
	tensor.PutFloat32s(data, []float32{1, 2})
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
		if dt == tensor.BF16 {
			data = data[:4]
		}
		tt, err := tensor.New("x", dt, tensor.Shape{2}, data)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Load(tt)
		if err != nil {
			t.Fatal(err)
		}
		before := download(t, c, b)
		clear(data)
		if after := download(t, c, b); after[0] != before[0] || after[1] != before[1] {
			t.Errorf("%v: buffer changed with the host tensor: %v then %v", dt, before, after)
		}
	}
}

func TestLoadF64BecomesF32(t *testing.T) {
	c := New()
	data := []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x3f} // 1.5 as float64
	tt, err := tensor.New("x", tensor.F64, tensor.Shape{1}, data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Load(tt)
	if err != nil {
		t.Fatal(err)
	}
	if b.DType() != tensor.F32 || download(t, c, b)[0] != 1.5 {
		t.Errorf("got %v %v, want F32 [1.5]", b.DType(), download(t, c, b))
	}
}

func TestLoadErrors(t *testing.T) {
	c := New()
	for _, tc := range []struct {
		name string
		t    *tensor.Tensor
		want string
	}{
		{"nil", nil, "nil tensor"},
		{"short data", &tensor.Tensor{Name: "w", DType: tensor.F32, Shape: tensor.Shape{2, 2}, Data: make([]byte, 12)}, `"w"`},
		{"integer", &tensor.Tensor{Name: "ids", DType: tensor.I32, Shape: tensor.Shape{2}, Data: make([]byte, 8)}, "not a floating-point type"},
		{"nf4 without its header", &tensor.Tensor{Name: "q", DType: tensor.NF4, Shape: tensor.Shape{2, 64}, Data: make([]byte, 64)}, `"q"`},
		{"partial block", &tensor.Tensor{Name: "q8", DType: tensor.Q8_0, Shape: tensor.Shape{2, 16}, Data: make([]byte, 34)}, "blocks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Load(tc.t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}

func TestWriteReadErrors(t *testing.T) {
	c, other := New(), New()
	b := c.Zeros(2, 3)
	w, _ := uploadAs(t, c, tensor.Q8_0, make([]float32, 32), 32)
	freed := c.Zeros(4)
	c.Free(freed)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"write past end", c.Write(b, 4, make([]float32, 3)), "do not fit"},
		{"write negative offset", c.Write(b, -1, nil), "do not fit"},
		{"write weight", c.Write(w, 0, []float32{1}), "only F32"},
		{"write foreign", c.Write(other.Zeros(2), 0, []float32{1}), "another cpu backend"},
		{"write freed", c.Write(freed, 0, []float32{1}), "after Free"},
		{"write nil", c.Write(nil, 0, nil), "nil buffer"},
		{"read past end", c.Read(b, 6, make([]float32, 1)), "exceed"},
		{"read freed", c.Read(freed, 0, nil), "after Free"},
		{"read foreign type", c.Read(fakeBuffer{}, 0, nil), "another backend"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, tc.err, tc.want)
		}
	}
}

type fakeBuffer struct{}

func (fakeBuffer) DType() tensor.DType { return tensor.F32 }
func (fakeBuffer) Shape() tensor.Shape { return tensor.Shape{1} }

func TestViewSharesStorage(t *testing.T) {
	c := New()
	b := upload(t, c, []float32{0, 1, 2, 3, 4, 5, 6, 7}, 2, 4)
	v := c.View(b, 2, 3, 2) // elements 2..7 as [3 2]
	if !v.Shape().Equal(tensor.Shape{3, 2}) || v.DType() != tensor.F32 {
		t.Fatalf("view is %v %v", v.DType(), v.Shape())
	}
	if got := download(t, c, v); got[0] != 2 || got[5] != 7 {
		t.Errorf("view reads %v", got)
	}
	c.Scale(v, v, 10)
	assertClose(t, "parent after scaling the view", download(t, c, b), []float64{0, 1, 20, 30, 40, 50, 60, 70}, 0, 0)
	vv := c.View(v, 4, 2) // a view of a view: elements 6, 7
	if err := c.Write(vv, 1, []float32{-1}); err != nil {
		t.Fatal(err)
	}
	if got := download(t, c, b)[7]; got != -1 {
		t.Errorf("write through a view of a view: parent[7] = %v", got)
	}
	c.Free(vv)
	if err := c.Read(vv, 0, make([]float32, 1)); err == nil {
		t.Error("read of a freed view succeeded")
	}
	if err := c.Read(v, 0, make([]float32, 1)); err != nil {
		t.Errorf("freeing a view invalidated its parent view: %v", err)
	}
	c.Free(b)
	c.Free(b) // a second Free is harmless
	if err := c.Read(v, 0, make([]float32, 1)); err == nil {
		t.Error("read of a view of a freed buffer succeeded")
	}
	mustPanic(t, "does not fit", func() { c.View(c.Zeros(4), 1, 4) })
	w, _ := uploadAs(t, c, tensor.F16, []float32{1, 2}, 2)
	mustPanic(t, "must be F32", func() { c.View(w, 0, 1) })
	mustPanic(t, "after Free", func() { c.Scale(v, v, 1) })
	mustPanic(t, "invalid shape", func() { c.Zeros(2, -1) })
	mustPanic(t, "another backend", func() { c.Free(fakeBuffer{}) })
}

func TestShapeIsACopy(t *testing.T) {
	c := New()
	b := c.Zeros(2, 3)
	s := b.Shape()
	s[0] = 99
	if b.Shape()[0] != 2 {
		t.Error("mutating Shape()'s result changed the buffer")
	}
	var _ backend.Buffer = b
}

// TestReadLargeQuantized reads a range longer than Read's decoding piece,
// starting and ending inside blocks.
func TestReadLargeQuantized(t *testing.T) {
	c := New()
	const rows, cols = 40, 1024
	b, dec := uploadAs(t, c, tensor.Q4_0, randn(newRand(21), rows*cols, 1), rows, cols)
	got := make([]float32, rows*cols-20)
	if err := c.Read(b, 7, got); err != nil {
		t.Fatal(err)
	}
	assertClose(t, "read", got, to64(dec[7:7+len(got)]), 0, 0)
}
