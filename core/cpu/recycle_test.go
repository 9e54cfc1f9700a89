package cpu

import (
	"testing"
	"unsafe"
)

// TestRecycledZeros: a buffer made after another of the same size was
// freed reuses its array and still reads zeros; a freed buffer's views
// stay invalid even when its array lives on in another buffer.
func TestRecycledZeros(t *testing.T) {
	c := NewWithThreads(1)
	a := c.Zeros(3, 5)
	view := c.View(a, 5, 5)
	data := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	if err := c.Write(a, 0, data); err != nil {
		t.Fatal(err)
	}
	first := unsafe.SliceData(a.(*buffer).st.f32)
	c.Free(a)
	c.Free(a) // twice is harmless, and recycles nothing twice
	b, d := c.Zeros(15), c.Zeros(5, 3)
	if unsafe.SliceData(b.(*buffer).st.f32) != first {
		t.Fatal("Zeros did not reuse the freed array of the same length")
	}
	if unsafe.SliceData(d.(*buffer).st.f32) == first {
		t.Fatal("two live buffers share one recycled array")
	}
	got := make([]float32, 15)
	if err := c.Read(b, 0, got); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 0 {
			t.Fatalf("recycled buffer holds %v at %d, want zeros", v, i)
		}
	}
	if err := c.Read(view, 0, got[:5]); err == nil {
		t.Fatal("a view of the freed buffer still reads")
	}
}

// TestRecyclerBound: the list keeps at most recycleBytes, evicting other
// lengths for a new one, and forgets lengths past recycleLengths.
func TestRecyclerBound(t *testing.T) {
	var r recycler
	big := recycleBytes / 4 / 4 // four of these fill the list
	for range 5 {
		r.put(make([]float32, big))
	}
	if r.bytes != recycleBytes {
		t.Fatalf("list holds %d bytes after five puts of a quarter, want %d", r.bytes, recycleBytes)
	}
	r.put(make([]float32, 10))
	if r.bytes > recycleBytes || len(r.lists) != 2 {
		t.Fatalf("a new length: %d bytes in %d lengths", r.bytes, len(r.lists))
	}
	r.put(make([]float32, recycleBytes/4+1)) // over the whole bound
	if r.bytes > recycleBytes {
		t.Fatalf("%d bytes", r.bytes)
	}
	for n := range 2 * recycleLengths {
		r.put(make([]float32, 1000+n))
	}
	if len(r.lists) > recycleLengths {
		t.Fatalf("%d lengths kept", len(r.lists))
	}
	total := 0
	for _, l := range r.lists {
		total += 4 * l.n * len(l.arrays)
	}
	if total != r.bytes {
		t.Fatalf("lists hold %d bytes, counted %d", total, r.bytes)
	}
	if a := r.get(1000 + 2*recycleLengths - 1); len(a) != 1000+2*recycleLengths-1 {
		t.Fatalf("get returned %d values", len(a))
	}
}
