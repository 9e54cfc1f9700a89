package tokenizer

// pieceIndex finds the id of a vocabulary piece by its spelling: an
// open-addressing hash table of ids, keyed by tokens[id]. It replaces a
// map[string]int32 on the merge loop's path, which looks up every
// adjacent pair of a text: in WebAssembly (the browser and plugin builds)
// a Go map lookup is a chain of runtime calls (string hash, its fallback,
// the group probe) that cost more than the rest of the merge, and this
// table hashes inline and compares one string. Natively the two are
// about as fast.
type pieceIndex struct {
	tokens []string
	// slots holds ids (-1: empty) at their hash's position or the next
	// free one after it; its length is a power of two at least twice the
	// number of ids. hashes holds each slot's full hash, so most
	// mismatches cost no string comparison.
	slots  []int32
	hashes []uint32
	// ids lists the indexed ids in the order they were added, for
	// iteration that does not depend on the table's layout.
	ids []int32
}

// newPieceIndex returns an empty index over tokens with room for n ids.
func newPieceIndex(tokens []string, n int) *pieceIndex {
	size := 8
	for size < 2*n {
		size *= 2
	}
	x := &pieceIndex{tokens: tokens, slots: make([]int32, size), hashes: make([]uint32, size)}
	for i := range x.slots {
		x.slots[i] = -1
	}
	return x
}

// pieceHash is 32-bit FNV-1a.
func pieceHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// lookup returns the id spelled s, or false.
func (x *pieceIndex) lookup(s string) (int32, bool) {
	h := pieceHash(s)
	mask := uint32(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		id := x.slots[i]
		if id < 0 {
			return -1, false
		}
		if x.hashes[i] == h && x.tokens[id] == s {
			return id, true
		}
	}
}

// add indexes id under tokens[id] unless an id with that spelling is
// there already (the first one wins, as llama.cpp's vocabulary does).
func (x *pieceIndex) add(id int32) {
	if 2*(len(x.ids)+1) > len(x.slots) {
		x.grow()
	}
	s := x.tokens[id]
	h := pieceHash(s)
	mask := uint32(len(x.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		old := x.slots[i]
		if old < 0 {
			x.slots[i], x.hashes[i] = id, h
			x.ids = append(x.ids, id)
			return
		}
		if x.hashes[i] == h && x.tokens[old] == s {
			return
		}
	}
}

// grow doubles the table.
func (x *pieceIndex) grow() {
	ids := x.ids
	*x = *newPieceIndex(x.tokens, len(x.slots))
	for _, id := range ids {
		x.add(id)
	}
}
