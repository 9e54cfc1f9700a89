package cpu

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// uploadNF4 quantizes vals to NF4 (with or without double quantization),
// loads them, and returns the buffer with the values it decodes to.
func uploadNF4(t *testing.T, c *Backend, vals []float32, doubleQuant bool, shape ...int) (backend.Buffer, []float32) {
	t.Helper()
	d := tensor.QuantizeNF4(vals, doubleQuant)
	tt, err := tensor.New("nf4", tensor.NF4, tensor.Shape(shape), d.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Load(tt)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := d.Dequantize()
	if err != nil {
		t.Fatal(err)
	}
	return b, dec
}

func sameFloat32Bits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestMatMulNF4 runs the orientations training uses with an NF4 b whose
// rows are not whole 64-element blocks (so tiles start inside blocks and
// blocks cross rows), against a float64 reference and bit for bit against
// an F32 b holding the dequantized values: the kernels see the same numbers
// in the same order.
func TestMatMulNF4(t *testing.T) {
	shapes := []struct {
		m, n, k int
		f       backend.MatMul
	}{
		{1, 40, 50, backend.MatMul{TransB: true}},      // generation
		{7, 19, 96, backend.MatMul{TransB: true}},      // forward
		{70, 21, 130, backend.MatMul{TransB: true}},    // several row tiles, rows of 130
		{6, 150, 33, backend.MatMul{Accumulate: true}}, // input gradient: b [33, 150], two column tiles
		{40, 70, 20, backend.MatMul{Alpha: 2}},
		{3, 64, 70, backend.MatMul{TransA: true, Alpha: 0.25}},
		{5, 3, 77, backend.MatMul{TransA: true, TransB: true, Accumulate: true, Alpha: 3}},
	}
	for _, dq := range []bool{false, true} {
		for _, threads := range threadCounts {
			c := newTestBackend(threads)
			for si, s := range shapes {
				t.Run(fmt.Sprintf("double=%v/%dthreads/%dx%dx%d/%+v", dq, threads, s.m, s.n, s.k, s.f), func(t *testing.T) {
					if !dq {
						checkMatMul(t, c, tensor.NF4, s.m, s.n, s.k, s.f, 200+uint64(si))
					}
					r := newRand(300 + uint64(si))
					aShape, bShape := []int{s.m, s.k}, []int{s.k, s.n}
					if s.f.TransA {
						aShape = []int{s.k, s.m}
					}
					if s.f.TransB {
						bShape = []int{s.n, s.k}
					}
					a := upload(t, c, randn(r, s.m*s.k, 1), aShape...)
					bq, dec := uploadNF4(t, c, randn(r, s.k*s.n, 0.05), dq, bShape...)
					bf := upload(t, c, dec, bShape...)
					init := randn(r, s.m*s.n, 1)
					d1, d2 := upload(t, c, init, s.m, s.n), upload(t, c, init, s.m, s.n)
					c.MatMul(d1, a, bq, s.f)
					c.MatMul(d2, a, bf, s.f)
					sameFloat32Bits(t, "NF4 product vs F32 of the dequantized weight", download(t, c, d1), download(t, c, d2))
				})
			}
		}
	}
}

// TestNF4ReadEmbeddingRMSNorm reads arbitrary ranges, gathers rows of an
// NF4 table whose rows (of 50) cross blocks, and uses an NF4 norm weight.
func TestNF4ReadEmbeddingRMSNorm(t *testing.T) {
	for _, dq := range []bool{false, true} {
		c := newTestBackend(3)
		r := newRand(9)
		const vocab, dim = 13, 50
		table, dec := uploadNF4(t, c, randn(r, vocab*dim, 0.1), dq, vocab, dim)
		if table.DType() != tensor.NF4 || !table.Shape().Equal(tensor.Shape{vocab, dim}) {
			t.Fatalf("loaded %v %v", table.DType(), table.Shape())
		}
		for _, rg := range [][2]int{{0, vocab * dim}, {1, 1}, {63, 3}, {37, 200}, {vocab*dim - 1, 1}, {100, 0}} {
			got := make([]float32, rg[1])
			if err := c.Read(table, rg[0], got); err != nil {
				t.Fatal(err)
			}
			sameFloat32Bits(t, fmt.Sprintf("Read(%d, %d)", rg[0], rg[1]), got, dec[rg[0]:rg[0]+rg[1]])
		}
		if err := c.Read(table, vocab*dim-1, make([]float32, 2)); err == nil {
			t.Error("Read past the end succeeded")
		}
		ids := []int32{3, 0, 12, 3, 7}
		dst := c.Zeros(len(ids), dim)
		c.Embedding(dst, table, ids)
		var want []float32
		for _, id := range ids {
			want = append(want, dec[int(id)*dim:int(id+1)*dim]...)
		}
		sameFloat32Bits(t, "Embedding", download(t, c, dst), want)

		w, wdec := uploadNF4(t, c, randn(r, dim, 1), dq, dim)
		x := upload(t, c, randn(r, 4*dim, 1), 4, dim)
		y1, y2 := c.Zeros(4, dim), c.Zeros(4, dim)
		c.RMSNorm(y1, x, w, 1e-5)
		c.RMSNorm(y2, x, upload(t, c, wdec, dim), 1e-5)
		sameFloat32Bits(t, "RMSNorm with an NF4 weight", download(t, c, y1), download(t, c, y2))
	}
}

func TestLoadNF4Errors(t *testing.T) {
	c := New()
	good := tensor.QuantizeNF4(make([]float32, 100), false).Bytes()
	for _, tc := range []struct {
		name  string
		shape tensor.Shape
		data  []byte
		want  string
	}{
		{"no header", tensor.Shape{2, 64}, make([]byte, 72), "starts with"},
		{"too short", tensor.Shape{2, 64}, make([]byte, 5), "header"},
		{"shape disagrees", tensor.Shape{2, 64}, good, "holds 100 elements"},
		{"truncated", tensor.Shape{100}, good[:len(good)-2], "needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Load(&tensor.Tensor{Name: "w", DType: tensor.NF4, Shape: tc.shape, Data: tc.data})
			if err == nil || !strings.Contains(err.Error(), `"w"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error %v, want one naming the tensor and mentioning %q", err, tc.want)
			}
		})
	}
}

// TestNF4LoadKeepsOwnCopy checks that Load does not alias the caller's
// bytes, and that ResidentBytes counts what NF4 keeps.
func TestNF4LoadKeepsOwnCopy(t *testing.T) {
	c := New()
	r := newRand(4)
	vals := randn(r, 64*300+10, 1)
	for _, dq := range []bool{false, true} {
		d := tensor.QuantizeNF4(vals, dq)
		raw := d.Bytes()
		tt, err := tensor.New("w", tensor.NF4, tensor.Shape{len(vals)}, raw)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Load(tt)
		if err != nil {
			t.Fatal(err)
		}
		before := download(t, c, b)
		for i := range raw {
			raw[i] = 0xff
		}
		sameFloat32Bits(t, "after the caller reused its bytes", download(t, c, b), before)
		size, _ := tensor.NF4Bytes(int64(len(vals)), dq)
		if got := c.ResidentBytes(b); got < size-16 || got > size {
			t.Errorf("double=%v: ResidentBytes %d, layout is %d bytes", dq, got, size)
		}
		f32 := upload(t, c, vals, len(vals))
		if got := c.ResidentBytes(f32, c.View(f32, 0, 5)); got != 4*int64(len(vals)) {
			t.Errorf("ResidentBytes of an F32 buffer and a view = %d, want %d", got, 4*len(vals))
		}
		c.Free(b)
		if got := c.ResidentBytes(b); got != 0 {
			t.Errorf("ResidentBytes of a freed buffer = %d", got)
		}
		if err := c.Read(b, 0, make([]float32, 1)); err == nil {
			t.Error("Read after Free succeeded")
		}
	}
}
