package cpu

import "sync"

// Workers dequantize rows, pack panels and keep per-row statistics in
// scratch slices taken from a free list and handed back when done. The
// list is a plain locked stack rather than a sync.Pool: a sync.Pool
// reallocates its internal chains as goroutines move between Ps, and
// empties itself at every garbage collection, so operations built on it
// never quite stop allocating.

// scratchList is a free list of scratch slices of T.
type scratchList[T float32 | float64] struct {
	mu   sync.Mutex
	free []*[]T
}

// get returns a slice of n elements with unspecified contents: the
// smallest free slice that holds n, or, when none does, a new one that
// replaces the largest free slice, so that the list holds about as many
// slices as are ever in use at once, each grown to the sizes asked of it.
func (s *scratchList[T]) get(n int) *[]T {
	s.mu.Lock()
	best, largest := -1, -1
	for i, p := range s.free {
		switch c := cap(*p); {
		case c >= n && (best < 0 || c < cap(*s.free[best])):
			best = i
		case c < n && (largest < 0 || c > cap(*s.free[largest])):
			largest = i
		}
	}
	var p *[]T
	if best < 0 {
		best = largest
	} else {
		p = s.free[best]
	}
	if best >= 0 {
		last := len(s.free) - 1
		s.free[best] = s.free[last]
		s.free[last] = nil
		s.free = s.free[:last]
	}
	s.mu.Unlock()
	if p == nil {
		// A quarter more than asked lets a slowly growing request (the
		// attention row of token-by-token generation) reuse the slice.
		b := make([]T, n, n+n/4)
		p = &b
	}
	*p = (*p)[:n]
	return p
}

// put hands p back to the list.
func (s *scratchList[T]) put(p *[]T) {
	s.mu.Lock()
	s.free = append(s.free, p)
	s.mu.Unlock()
}

var (
	scratch32 scratchList[float32]
	scratch64 scratchList[float64]
)

// getScratch returns a slice of n float32s with unspecified contents;
// putScratch hands it back.
func getScratch(n int) *[]float32 { return scratch32.get(n) }

func putScratch(p *[]float32) { scratch32.put(p) }

// getScratch64 and putScratch64 are getScratch and putScratch for
// float64s.
func getScratch64(n int) *[]float64 { return scratch64.get(n) }

func putScratch64(p *[]float64) { scratch64.put(p) }
