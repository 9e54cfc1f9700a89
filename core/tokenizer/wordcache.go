package tokenizer

import (
	"strings"
	"sync"
)

// wordCache remembers the ids of words (SentencePiece) or pre-tokens
// (byte-level BPE) a tokenizer has merged, as Hugging Face's BPE does: a
// word seen again costs one lookup instead of its merges. It is safe for
// concurrent use (Encode is), and bounded: past maxCachedWords entries it
// starts over, so a stream of distinct words (random text, long numbers)
// costs memory in proportion to the bound, never to the input. The zero
// value is ready to use.
type wordCache struct {
	mu  sync.Mutex
	ids map[string][]int32
}

// Bounds of the cache: entries, and the longest word cached in bytes
// (longer ones are rare and would only bloat it).
const (
	maxCachedWords = 1 << 17
	maxCachedWord  = 256
)

func (c *wordCache) get(word string) ([]int32, bool) {
	c.mu.Lock()
	ids, ok := c.ids[word]
	c.mu.Unlock()
	return ids, ok
}

// put stores a copy of ids for word (a copy of it too: word is usually a
// slice of a larger text the cache must not keep alive).
func (c *wordCache) put(word string, ids []int32) {
	kept := append([]int32(nil), ids...)
	c.mu.Lock()
	if c.ids == nil || len(c.ids) >= maxCachedWords {
		c.ids = make(map[string][]int32)
	}
	c.ids[strings.Clone(word)] = kept
	c.mu.Unlock()
}
