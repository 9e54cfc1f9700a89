package host

import "sync"

// outputLog keeps the beginning and the end of what the guest writes to
// stdout and stderr: the beginning explains a crash (Go's "fatal error:
// out of memory", a panic's message and the failing goroutine) before the
// goroutine dump that follows; the end shows the latest output. What lies
// between is dropped, so a chatty guest cannot grow host memory.
type outputLog struct {
	mu         sync.Mutex
	head, tail []byte
	max        int // bytes kept in head and in tail each
	dropped    bool
}

func newOutputLog(max int) *outputLog { return &outputLog{max: max} }

func (o *outputLog) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	if room := o.max - len(o.head); room > 0 {
		k := min(room, len(p))
		o.head = append(o.head, p[:k]...)
		p = p[k:]
	}
	if len(p) > o.max {
		p = p[len(p)-o.max:]
		o.dropped = true
	}
	if over := len(o.tail) + len(p) - o.max; over > 0 {
		o.tail = append(o.tail[:0], o.tail[over:]...)
		o.dropped = true
	}
	o.tail = append(o.tail, p...)
	return n, nil
}

// Head returns the first bytes written.
func (o *outputLog) Head() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.head)
}

// String returns the head and the tail, marking a gap between them.
func (o *outputLog) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropped {
		return string(o.head) + "\n...\n" + string(o.tail)
	}
	return string(o.head) + string(o.tail)
}
