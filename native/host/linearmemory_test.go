package host

import (
	"bytes"
	"context"
	"testing"
)

// TestLinearMemoryGrows checks the backing array of a guest's memory: it
// keeps the contents, hands out zeroed pages, never exceeds the maximum,
// and grows geometrically, so that a guest growing page by page copies
// its memory a logarithmic number of times, not once per page.
func TestLinearMemoryGrows(t *testing.T) {
	const page, max = 1 << 16, 64 << 16
	m := memoryAllocator{}.Allocate(page, max).(*linearMemory)
	buf := m.Reallocate(page)
	copy(buf, "guest data")
	moves := 0
	for size := uint64(2 * page); size <= max; size += page {
		old := &buf[0]
		buf = m.Reallocate(size)
		if uint64(len(buf)) != size {
			t.Fatalf("Reallocate(%d) gave %d bytes", size, len(buf))
		}
		if &buf[0] != old {
			moves++
		}
		if !bytes.HasPrefix(buf, []byte("guest data")) {
			t.Fatalf("Reallocate(%d) lost the contents", size)
		}
		if !bytes.Equal(buf[size-page:], make([]byte, page)) {
			t.Fatalf("Reallocate(%d): the new page is not zero", size)
		}
		if uint64(cap(buf)) > max {
			t.Fatalf("Reallocate(%d): capacity %d over the maximum %d", size, cap(buf), max)
		}
	}
	if moves > 7 { // 1 page to 64, doubling: 6 moves
		t.Errorf("growing 1 page at a time to 64 moved the memory %d times", moves)
	}
	if m.Reallocate(max+page) != nil {
		t.Error("Reallocate past the maximum did not fail")
	}
}

// TestGuestMemoryStaysBounded runs enough Evals for the guest's heap to
// reach Go's collection threshold several times: its memory must stay
// where it settled. Before graft_call yielded to the guest's other
// goroutines on its way out, the collector's mark workers never ran
// between calls, the first cycle never finished, and the memory grew by
// about 420 KiB an Eval of two sentences without end, toward the tenant's
// cap.
func TestGuestMemoryStaysBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("a hundred Evals under -race take minutes; test-native runs this")
	}
	in := withModel(t, testHost(t))
	var texts []string
	for range 8 {
		texts = append(texts, probeTexts...)
	}
	eval := func() {
		if _, err := in.Eval(context.Background(), EvalRequest{Texts: texts}); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		eval()
	}
	settled := in.mod.Memory().Size()
	// The heap reaches the collector's threshold after 60 to 100 such
	// calls; then the memory settles at under twice its size here, where
	// it used to grow by 3 MiB a call.
	for range 90 {
		eval()
	}
	if size := in.mod.Memory().Size(); size > 3*settled {
		t.Errorf("100 Evals grew the guest's memory from %d to %d MiB", settled>>20, size>>20)
	}
}
