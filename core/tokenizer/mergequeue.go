package tokenizer

// symbol is one node of the doubly linked list of pieces a word is split
// into while BPE merges run. It spans text[start:end]; a merged-away
// symbol has start == end.
//
// Fields are int32 to keep the list compact: for long inputs the merge
// loop is bound by memory traffic, not arithmetic.
type symbol struct {
	start, end int32
	prev, next int32 // neighbour indices, -1 at the ends
	id         int32 // vocabulary id, where the algorithm tracks one
}

func (s *symbol) dead() bool { return s.start == s.end }

// pair is a candidate merge of two adjacent symbols. size is the byte
// length of the merged piece when the pair was queued: if either side
// has changed since, the pair is stale and skipped.
type pair struct {
	left, right int32
	size        int32
	priority    float32 // higher merges first (a score, or minus a rank < 2^24)
	id          int32   // id of the merged piece, where tracked
}

// pairQueue is a binary max-heap of pairs ordered by priority, then by
// leftmost position, which makes merges O(n log n) in the word length
// instead of rescanning all pairs after every merge.
type pairQueue struct{ items []pair }

func (q *pairQueue) reset() { q.items = q.items[:0] }

func (q *pairQueue) Len() int { return len(q.items) }

func (q *pairQueue) less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return a.left < b.left
}

func (q *pairQueue) push(p pair) {
	q.items = append(q.items, p)
	i := len(q.items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q.items[i], q.items[parent] = q.items[parent], q.items[i]
		i = parent
	}
}

func (q *pairQueue) pop() pair {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items = q.items[:last]
	i := 0
	for {
		l, r, best := 2*i+1, 2*i+2, i
		if l < last && q.less(l, best) {
			best = l
		}
		if r < last && q.less(r, best) {
			best = r
		}
		if best == i {
			return top
		}
		q.items[i], q.items[best] = q.items[best], q.items[i]
		i = best
	}
}
