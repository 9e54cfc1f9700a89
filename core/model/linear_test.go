package model

import (
	"fmt"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/tensor"
)

// scaleHook multiplies the output of what it wraps by k, recording its
// calls and the input its Backward receives.
type scaleHook struct {
	k    float32
	log  *[]string
	tmp  backend.Buffer
	seen backend.Buffer
}

func (h *scaleHook) Forward(b backend.Backend, l *Linear, dst, x backend.Buffer) {
	*h.log = append(*h.log, fmt.Sprintf("fwd %g wraps=%v", h.k, l.Wraps()))
	l.Base(b, dst, x)
	b.Scale(dst, dst, h.k)
}

func (h *scaleHook) Backward(b backend.Backend, l *Linear, dx, dy, x backend.Buffer) {
	*h.log = append(*h.log, fmt.Sprintf("bwd %g", h.k))
	h.seen = x
	b.Scale(h.tmp, dy, h.k)
	l.BaseBackward(b, dx, h.tmp)
}

func TestLinearHookStack(t *testing.T) {
	b := cpu.New()
	load := func(vals []float32, shape ...int) backend.Buffer {
		tt, err := tensor.FromFloat32("t", shape, vals)
		if err != nil {
			t.Fatal(err)
		}
		buf, err := b.Load(tt)
		if err != nil {
			t.Fatal(err)
		}
		return buf
	}
	read := func(buf backend.Buffer) []float32 {
		out := make([]float32, buf.Shape().Numel())
		if err := b.Read(buf, 0, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	lin := &Linear{Name: "l", In: 2, Out: 2, Weight: load([]float32{1, 2, 3, 4}, 2, 2)}
	x := load([]float32{1, 1}, 1, 2)
	var log []string
	h2 := &scaleHook{k: 2, log: &log, tmp: b.Zeros(1, 2)}
	h3 := &scaleHook{k: 3, log: &log, tmp: b.Zeros(1, 2)}
	h5 := &scaleHook{k: 5, log: &log, tmp: b.Zeros(1, 2)}
	lin.AddHook(h2)
	lin.AddHook(h3)
	lin.AddHook(h5)
	if !slices.Equal(lin.Hooks(), []LinearHook{h2, h3, h5}) {
		t.Fatalf("Hooks() = %v, want innermost first", lin.Hooks())
	}

	run := func(want []float32, wantDx []float32, wantLog []string) {
		t.Helper()
		log = log[:0]
		y := b.Zeros(1, 2)
		lin.Forward(b, y, x)
		if got := read(y); !slices.Equal(got, want) {
			t.Errorf("Forward = %v, want %v", got, want)
		}
		dx := b.Zeros(1, 2)
		lin.Backward(b, dx, load([]float32{1, 0}, 1, 2), x)
		if got := read(dx); !slices.Equal(got, wantDx) {
			t.Errorf("Backward dx = %v, want %v", got, wantDx)
		}
		if !slices.Equal(log, wantLog) {
			t.Errorf("calls %q, want %q", log, wantLog)
		}
		// Each hook's Backward got the input its Forward got.
		for _, h := range []*scaleHook{h2, h3, h5} {
			if slices.Contains(lin.Hooks(), LinearHook(h)) && h.seen != x {
				t.Errorf("hook %g: Backward got another input than its Forward", h.k)
			}
		}
		if lin.Wraps() {
			t.Error("Wraps() outside any hook")
		}
	}
	// x W^T = [3, 7]; dy W for dy = [1, 0] is [1, 2].
	run([]float32{90, 210}, []float32{30, 60},
		[]string{"fwd 5 wraps=true", "fwd 3 wraps=true", "fwd 2 wraps=false", "bwd 5", "bwd 3", "bwd 2"})

	// Outside a hook, Base is the plain projection.
	y := b.Zeros(1, 2)
	lin.Base(b, y, x)
	if got := read(y); !slices.Equal(got, []float32{3, 7}) {
		t.Errorf("Base outside a hook = %v, want the plain projection", got)
	}

	// Removing the middle hook joins its neighbours.
	if !lin.RemoveHook(h3) || lin.RemoveHook(h3) {
		t.Fatal("RemoveHook reports wrongly whether the hook was there")
	}
	run([]float32{30, 70}, []float32{10, 20}, []string{"fwd 5 wraps=true", "fwd 2 wraps=false", "bwd 5", "bwd 2"})

	// BaseInputGrad overwrites: called from the outer hook it is the
	// inner hook's input gradient alone.
	h5.seen = nil
	dst := load([]float32{100, 100}, 1, 2)
	outer := &gradProbe{dst: dst}
	lin.AddHook(outer)
	lin.Forward(b, b.Zeros(1, 2), x)
	lin.Backward(b, nil, load([]float32{1, 0}, 1, 2), x)
	if got := read(dst); !slices.Equal(got, []float32{10, 20}) {
		t.Errorf("BaseInputGrad = %v, want [10 20]", got)
	}
	lin.RemoveHook(outer)
	lin.RemoveHook(h5)
	lin.RemoveHook(h2)
	run([]float32{3, 7}, []float32{1, 2}, nil)
}

// gradProbe asks for its base's input gradient on its own.
type gradProbe struct{ dst backend.Buffer }

func (p *gradProbe) Forward(b backend.Backend, l *Linear, dst, x backend.Buffer) { l.Base(b, dst, x) }
func (p *gradProbe) Backward(b backend.Backend, l *Linear, dx, dy, x backend.Buffer) {
	l.BaseInputGrad(b, p.dst, dy)
}
