package host

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// TestDeadlineStopsTheGuest: a call past its deadline is stopped promptly,
// its instance is closed, and the host and its other instances keep
// serving.
func TestDeadlineStopsTheGuest(t *testing.T) {
	h := preemptiveHost(t)
	bystander := withModel(t, h)
	in := withModel(t, h)
	before := h.Instances()

	req := trainRequest(t, methods[0])
	req.Steps, req.EvalData = 100000, nil
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := in.Train(ctx, req, nil)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want DeadlineExceeded and ErrClosed", err)
	}
	if took > 10*time.Second {
		t.Errorf("the call took %v to stop after a 300ms deadline", took)
	}
	if in.Err() == nil || h.Instances() != before-1 {
		t.Fatalf("instance err %v, %d instances (was %d)", in.Err(), h.Instances(), before)
	}
	if err := in.Ping(context.Background()); !errors.Is(err, ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call on the stopped instance: %v", err)
	}
	if _, err := bystander.Generate(context.Background(), GenerateRequest{Prompt: "Once", MaxTokens: 4}); err != nil {
		t.Fatalf("another instance after the deadline: %v", err)
	}
	withModel(t, h) // and new ones start
}

// TestDeadlineStopsGuestCode: the deadline stops the guest inside its own
// code, far from any safe point or host kernel: tokenizing a long text
// runs no kernel and checks nothing, yet the call ends at its deadline.
// A cooperative host, which waits for the next safe point, is the
// contrast: the same call runs past its deadline.
func TestDeadlineStopsGuestCode(t *testing.T) {
	// 1.5 MB of made-up words: the tokenizer's word cache does not help.
	var b strings.Builder
	rng := rand.New(rand.NewPCG(5, 6))
	for b.Len() < 3<<19 {
		for range 3 + rng.IntN(6) {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		b.WriteByte(' ')
	}
	text := b.String()
	run := func(h *Host) (time.Duration, error) {
		in := withModel(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := in.Eval(ctx, EvalRequest{Texts: []string{text}})
		return time.Since(start), err
	}
	took, err := run(preemptiveHost(t))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want DeadlineExceeded and ErrClosed", err)
	}
	cooperative, _ := run(testHost(t))
	t.Logf("stopped after %v; a cooperative host returned after %v", took, cooperative)
	if 2*took >= cooperative {
		t.Errorf("the exact deadline stopped the call after %v, against a cooperative host's %v", took, cooperative)
	}
}

// TestOptionsTimeout bounds calls whose context has no deadline.
func TestOptionsTimeout(t *testing.T) {
	preemptiveHost(t) // compiled once; this host reads the code from the cache
	h, err := New(context.Background(), Options{Timeout: 3 * time.Second, CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	in := withModel(t, h)
	req := trainRequest(t, methods[0])
	req.Steps, req.EvalData = 100000, nil
	start := time.Now()
	_, err = in.Train(context.Background(), req, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want DeadlineExceeded and ErrClosed", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("a call under a 3s timeout ran %v", took)
	}
}

// TestMemoryLimit: a guest that needs more memory than its cap fails with
// ErrMemoryLimit and is closed; a request larger than the cap is refused
// before it reaches the guest; the host keeps serving.
func TestMemoryLimit(t *testing.T) {
	testHost(t)
	ctx := context.Background()
	h, err := New(ctx, Options{MemoryLimitMB: 64, Cooperative: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)

	in := newInstance(t, h)
	_, err = in.LoadModel(ctx, "huge.gguf", make([]byte, 100<<20))
	if !errors.Is(err, ErrMemoryLimit) || errors.Is(err, ErrClosed) {
		t.Fatalf("a 100 MiB request under a 64 MiB cap: %v, want ErrMemoryLimit with the instance open", err)
	}
	// 40 MiB fits once, but decoding the request copies it: the guest runs
	// out of memory inside the call.
	_, err = in.LoadModel(ctx, "big.gguf", make([]byte, 40<<20))
	if !errors.Is(err, ErrMemoryLimit) || !errors.Is(err, ErrClosed) {
		t.Fatalf("a guest past its cap: %v, want ErrMemoryLimit and ErrClosed", err)
	}
	if !strings.Contains(err.Error(), "64 MiB") {
		t.Errorf("the error does not name the cap: %v", err)
	}
	fresh := withModel(t, h)
	if _, err := fresh.Generate(ctx, GenerateRequest{Prompt: "Once", MaxTokens: 4}); err != nil {
		t.Fatalf("a fresh instance after the failure: %v", err)
	}
	info, err := fresh.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.MemoryBytes == 0 || info.MemoryBytes > 64<<20 {
		t.Fatalf("guest memory %d bytes under a 64 MiB cap", info.MemoryBytes)
	}
}

// TestMalformedRequests: garbage msgpack and unknown operations are
// refused with clear errors and the instance keeps working.
func TestMalformedRequests(t *testing.T) {
	ctx := context.Background()
	in := newInstance(t, testHost(t))
	raw, err := in.RawCall(ctx, []byte{0xc1, 0xff, 0x00})
	if err != nil {
		t.Fatal(err)
	}
	var resp abi.Response
	if err := abi.Decode(raw, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Code != abi.CodeBadRequest || !strings.Contains(resp.Error, "malformed request") {
		t.Fatalf("garbage request: %+v", resp)
	}
	err = in.Call(ctx, "teleport", nil, nil)
	var ce *CallError
	if !errors.Is(err, ErrBadRequest) || !errors.As(err, &ce) || !strings.Contains(ce.Message, `unknown operation "teleport"`) {
		t.Fatalf("unknown op: %v", err)
	}
	if err := in.Call(ctx, abi.OpGenerate, "not a struct", nil); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("arguments of the wrong shape: %v", err)
	}
	if _, err := in.Generate(ctx, GenerateRequest{Prompt: "x"}); !errors.Is(err, ErrNoModel) {
		t.Fatalf("generate without a model: %v", err)
	}
	if _, err := in.LoadModel(ctx, "junk.gguf", []byte("GGUFjunk")); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "junk.gguf") {
		t.Fatalf("corrupt model: %v", err)
	}
	if err := in.Ping(ctx); err != nil {
		t.Fatalf("after the bad requests: %v", err)
	}
}

// TestBadPlugins: garbage bytes, a module without the ABI's exports, one
// with a mistyped export and one of another ABI version are each refused
// by New with an error that says which.
func TestBadPlugins(t *testing.T) {
	mistyped := abiFuncs(int64(abi.Version))
	mistyped[3].results = []byte{wasmI32}
	for _, tc := range []struct {
		name   string
		plugin []byte
		is     error
		want   string
	}{
		{"garbage", []byte("this is not wasm"), ErrInvalidPlugin, "compiling the plugin"},
		{"empty", []byte{}, ErrInvalidPlugin, "compiling the plugin"},
		{"no exports", testModule(true), ErrInvalidPlugin, "does not export _initialize"},
		{"no memory", testModule(false, abiFuncs(int64(abi.Version))...), ErrInvalidPlugin, `its memory as "memory"`},
		{"mistyped call", testModule(true, mistyped...), ErrInvalidPlugin, "graft_call has type (i32) -> (i32), want (i32) -> (i64)"},
		{"other ABI version", testModule(true, abiFuncs(99)...), ErrABIVersion, "ABI version 99, this host version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(context.Background(), Options{Plugin: tc.plugin})
			if err == nil {
				h.Close(context.Background())
				t.Fatal("New accepted the plugin")
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
	// A module that speaks the ABI is accepted: the checks above are the
	// ones that failed.
	h, err := New(context.Background(), Options{Plugin: testModule(true, abiFuncs(int64(abi.Version))...)})
	if err != nil {
		t.Fatalf("a well-formed module: %v", err)
	}
	h.Close(context.Background())
}

// TestBadBuffers: a plugin whose graft_buffer or graft_call answers with
// a buffer too small or outside its memory fails the call with ErrCrashed
// and closes the instance; the host does not write or read out of bounds.
func TestBadBuffers(t *testing.T) {
	withBuffer := func(buffer, call uint64) []byte {
		funcs := abiFuncs(int64(abi.Version))
		funcs[2].value, funcs[3].value = int64(buffer), int64(call)
		return testModule(true, funcs...)
	}
	for _, tc := range []struct {
		name   string
		plugin []byte
		want   string
	}{
		{"no buffer", withBuffer(0, 0), "graft_buffer returned 0 bytes"},
		{"buffer too small", withBuffer(abi.Pack(64, 4), 0), "graft_buffer returned 4 bytes at 0x40"},
		{"buffer outside memory", withBuffer(abi.Pack(0xfff0, 4096), 0), "outside memory"},
		{"response outside memory", withBuffer(abi.Pack(64, 4096), abi.Pack(0xfff0, 4096)), "response at 0xfff0 of 4096 bytes is outside memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h, err := New(ctx, Options{Plugin: tc.plugin})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close(ctx)
			in := newInstance(t, h)
			err = in.Ping(ctx)
			if !errors.Is(err, ErrCrashed) || !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCrashed and ErrClosed containing %q", err, tc.want)
			}
		})
	}
}

// TestRequestBuffer: small requests reuse one guest buffer; a request
// larger than abi.KeepBuffer gets its own, which the guest drops after the
// call, and the next request asks for a small one again.
func TestRequestBuffer(t *testing.T) {
	ctx := context.Background()
	in := newInstance(t, testHost(t))
	if err := in.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	ptr, size := in.bufPtr, in.bufLen
	if size != abi.KeepBuffer {
		t.Fatalf("request buffer of %d bytes after a ping, want %d", size, abi.KeepBuffer)
	}
	if err := in.Ping(ctx); err != nil || in.bufPtr != ptr || in.bufLen != size {
		t.Fatalf("second ping: %v, buffer %#x+%d, was %#x+%d", err, in.bufPtr, in.bufLen, ptr, size)
	}
	if _, err := in.LoadModel(ctx, "stories260K.gguf", readFile(t, modelPath)); err != nil {
		t.Fatal(err)
	}
	if in.bufLen != 0 {
		t.Fatalf("the host still counts on a %d-byte buffer the guest dropped", in.bufLen)
	}
	res, err := in.Generate(ctx, GenerateRequest{Prompt: "Once", MaxTokens: 4})
	if err != nil || res.Text == "" || in.bufLen != abi.KeepBuffer {
		t.Fatalf("generate after the large request: %+v, %v, buffer of %d bytes", res, err, in.bufLen)
	}
}
