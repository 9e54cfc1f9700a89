package cpu

import "sync"

// Freed arrays are recycled: Free hands the array of a buffer that Zeros
// made to its backend, and a later Zeros of the same length clears it
// rather than allocating. Model code frees its activations, caches and
// gradients after every forward pass or step and asks for the same sizes
// again on the next, so a steady workload allocates almost nothing. That
// matters most inside a plugin guest, where the WebAssembly build of Go's
// allocator and collector (one thread, marking in assists) cost tens of
// microseconds per activation and were the largest part of an Eval.
//
// The list keeps at most recycleBytes. A put that would pass it evicts
// arrays of other lengths first, so a workload whose sizes change (a
// growing generation, a new batch shape) replaces the old sizes rather
// than finding the list full of them. It is a slice searched in order,
// not a map: a workload uses a handful of lengths, and Go's maps cost
// microseconds an operation in WebAssembly.

// recycleBytes bounds the memory a backend keeps for reuse, and
// recycleLengths the number of distinct lengths it keeps.
const (
	recycleBytes   = 64 << 20
	recycleLengths = 64
)

// recycler is a backend's list of freed arrays, by length.
type recycler struct {
	mu    sync.Mutex
	lists []arrayList
	bytes int
}

// arrayList is the freed arrays of one length.
type arrayList struct {
	n      int
	arrays [][]float32
}

// get returns a zeroed array of n float32s: a recycled one when the list
// holds one, a new one otherwise.
func (r *recycler) get(n int) []float32 {
	r.mu.Lock()
	for i := range r.lists {
		if l := &r.lists[i]; l.n == n && len(l.arrays) > 0 {
			a := r.pop(l)
			r.mu.Unlock()
			clear(a)
			return a
		}
	}
	r.mu.Unlock()
	return make([]float32, n)
}

// put hands an array that get returned back to the list; the caller
// keeps no reference to it. An array over the whole bound is left to the
// collector, and so is one that only arrays of its own length keep out.
func (r *recycler) put(a []float32) {
	n := len(a)
	if n == 0 || 4*n > recycleBytes {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.lists {
		if r.bytes+4*n <= recycleBytes {
			break
		}
		for l := &r.lists[i]; l.n != n && len(l.arrays) > 0 && r.bytes+4*n > recycleBytes; {
			r.pop(l)
		}
	}
	if r.bytes+4*n > recycleBytes {
		return
	}
	var home *arrayList
	for i := range r.lists {
		if r.lists[i].n == n {
			home = &r.lists[i]
			break
		}
	}
	if home == nil {
		if len(r.lists) == recycleLengths {
			r.dropEmpty()
		}
		if len(r.lists) == recycleLengths {
			return
		}
		r.lists = append(r.lists, arrayList{n: n})
		home = &r.lists[len(r.lists)-1]
	}
	home.arrays = append(home.arrays, a)
	r.bytes += 4 * n
}

// pop removes and returns the last array of l.
func (r *recycler) pop(l *arrayList) []float32 {
	last := len(l.arrays) - 1
	a := l.arrays[last]
	l.arrays[last] = nil
	l.arrays = l.arrays[:last]
	r.bytes -= 4 * l.n
	return a
}

// dropEmpty forgets the lengths that hold no array.
func (r *recycler) dropEmpty() {
	kept := r.lists[:0]
	for _, l := range r.lists {
		if len(l.arrays) > 0 {
			kept = append(kept, l)
		}
	}
	clear(r.lists[len(kept):])
	r.lists = kept
}
