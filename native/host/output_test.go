package host

import (
	"strings"
	"testing"
)

func TestOutputLogKeepsHeadAndTail(t *testing.T) {
	o := newOutputLog(8)
	for _, w := range []string{"fatal", " error", ": out of memory\n", strings.Repeat("x", 50), "the end"} {
		if n, err := o.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := o.Head(); got != "fatal er" {
		t.Fatalf("head %q", got)
	}
	if got := o.String(); got != "fatal er\n...\nxthe end" {
		t.Fatalf("log %q", got)
	}
	short := newOutputLog(8)
	short.Write([]byte("0123456789"))
	if got := short.String(); got != "0123456789" {
		t.Fatalf("log %q, want everything when nothing was dropped", got)
	}
}
