package host

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// TestCompilationCacheDir: a second host on the same cache directory
// loads the compiled plugin instead of compiling it.
func TestCompilationCacheDir(t *testing.T) {
	cold := preemptiveHost(t)
	if entries, err := os.ReadDir(cacheDir); err != nil || len(entries) == 0 {
		t.Fatalf("the cache directory is empty (%v)", err)
	}
	h, err := New(context.Background(), Options{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	t.Logf("compile: %v cold, %v from the cache", cold.CompileTime(), h.CompileTime())
	if h.CompileTime() > cold.CompileTime()/2 {
		t.Errorf("compiling from the cache took %v, cold %v", h.CompileTime(), cold.CompileTime())
	}
	withModel(t, h)
}

// TestCooperativeDeadlines: a Cooperative host meets deadlines at the
// guest's safe points and keeps the instance.
func TestCooperativeDeadlines(t *testing.T) {
	h := testHost(t)
	t.Run("train", func(t *testing.T) {
		in := withModel(t, h)
		req := trainRequest(t, methods[0])
		req.Steps, req.EvalData = 100000, nil
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := in.Train(ctx, req, nil)
		if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v, want ErrInterrupted and DeadlineExceeded, instance open", err)
		}
		if len(res.Losses) != res.Steps || res.Steps >= req.Steps {
			t.Fatalf("partial result: %d steps, %d losses", res.Steps, len(res.Losses))
		}
		// The instance and the partly trained adapter are intact.
		if _, err := in.ExportAdapter(context.Background(), "default"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("generate", func(t *testing.T) {
		in := withModel(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := in.Generate(ctx, GenerateRequest{Prompt: "Once", MaxTokens: 500})
		if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrInterrupted and DeadlineExceeded", err)
		}
		if _, err := in.Generate(context.Background(), GenerateRequest{Prompt: "Once", MaxTokens: 4}); err != nil {
			t.Fatalf("after the interruption: %v", err)
		}
	})
}
