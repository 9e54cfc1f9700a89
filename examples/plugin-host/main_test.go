package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/graft-ml/graft/core/formats/bundle"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/native/host"
)

const modelPath = "../../models/stories260K/stories260K.gguf"

var (
	hostOnce sync.Once
	sharedH  *host.Host
	hostErr  error
)

// testHost is the host every test shares: the plugin compiles once.
func testHost(t *testing.T) *host.Host {
	t.Helper()
	hostOnce.Do(func() {
		sharedH, hostErr = host.New(context.Background(), host.Options{MemoryLimitMB: 256, Cooperative: true})
	})
	if hostErr != nil {
		t.Fatal(hostErr)
	}
	return sharedH
}

// testService serves the stories260K model on a test server.
func testService(t *testing.T, opt serviceOptions) (*service, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	svc, err := newService(ctx, testHost(t), modelPath, opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.routes())
	t.Cleanup(func() {
		srv.Close()
		svc.closeAll(ctx)
	})
	return svc, srv
}

// post sends body as JSON and checks the status; it returns the decoded
// answer.
func post(t *testing.T, srv *httptest.Server, path string, body any, want int) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("POST %s: status %d (%v), want %d", path, resp.StatusCode, out, want)
	}
	return out
}

// TestTenantsTrainTheirOwnAdapters: one tenant trains an adapter on Pip
// stories and its generations change; another tenant's do not.
func TestTenantsTrainTheirOwnAdapters(t *testing.T) {
	trainData, err := os.ReadFile("../lora/data/train.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	_, srv := testService(t, serviceOptions{MaxTenants: 2, MaxBody: 1 << 20})
	post := func(path string, body any, want int) map[string]any {
		t.Helper()
		return post(t, srv, path, body, want)
	}
	prompt := map[string]any{"prompt": "Once upon a time, there was a little blue owl", "max_tokens": 30}
	before := post("/tenants/alice/generate", prompt, http.StatusOK)["text"]

	res := post("/tenants/alice/train", map[string]any{
		"data": string(trainData), "method": "lora",
		"options": map[string]any{"r": 8, "lora_alpha": 16, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj"}},
		"steps":   10, "batch": 4, "seq_len": 64, "pack": true, "lr": 1e-2, "seed": 1,
	}, http.StatusOK)
	if steps, _ := res["steps"].(float64); steps != 10 {
		t.Fatalf("train: %v", res)
	}
	after := post("/tenants/alice/generate", prompt, http.StatusOK)["text"]
	other := post("/tenants/bob/generate", prompt, http.StatusOK)["text"]
	if after == before || other != before {
		t.Fatalf("alice before %q, after %q; bob %q", before, after, other)
	}
	if !strings.Contains(after.(string), "Pip") {
		t.Logf("alice's adapter writes %q", after)
	}

	resp, err := http.Get(srv.URL + "/tenants/alice/adapter")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("adapter: %d %v", resp.StatusCode, err)
	}
	files, err := bundle.Decode(raw, "alice's adapter")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["adapter_model.safetensors"]; !ok {
		t.Fatalf("bundle holds %d files without adapter_model.safetensors", len(files))
	}

	// A whole training run as spec, as graft train --config run.json reads
	// it: bob trains Houlsby adapters on two stories.
	res = post("/tenants/bob/train", map[string]any{"spec": map[string]any{
		"method": "houlsby", "records": []map[string]string{{"text": "Pip the owl hooted."}, {"text": "Pip flew home."}},
		"steps": 2, "seq_len": 32,
	}}, http.StatusOK)
	if ad, _ := res["adapter"].(map[string]any); ad["peft_type"] != "BOTTLENECK" || res["steps"] != float64(2) {
		t.Fatalf("train with a spec: %v", res)
	}

	// Errors come back as JSON with a fitting status.
	post("/tenants/bad!id/generate", prompt, http.StatusBadRequest)
	post("/tenants/alice/generate", map[string]any{"temperature": -1}, http.StatusBadRequest)
	post("/tenants/carol/generate", prompt, http.StatusServiceUnavailable) // two tenants at most
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/tenants/bob", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", resp, err)
	}
	post("/tenants/carol/generate", prompt, http.StatusOK)
}

// TestBodyOverTheLimit: a body over -max-body-mb is 413 naming the limit,
// whether its length is announced or only found while reading it.
func TestBodyOverTheLimit(t *testing.T) {
	_, srv := testService(t, serviceOptions{MaxTenants: 1, MaxBody: 4 << 10})
	body := `{"data": "` + strings.Repeat("x", 5<<10) + `", "method": "lora", "steps": 1}`
	for _, tc := range []struct {
		name string
		body io.Reader
	}{
		{"Content-Length", strings.NewReader(body)},
		{"chunked", struct{ io.Reader }{strings.NewReader(body)}}, // hides the length
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/tenants/alice/train", "application/json", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(out["error"], "over the limit of 4096 bytes") {
				t.Fatalf("status %d %q, want 413 naming the limit", resp.StatusCode, out["error"])
			}
		})
	}
	if got := mebibytes(32 << 20); got != "32 MiB" {
		t.Errorf("the default limit reads %q", got)
	}
}

// TestRefusedBeforeThePlugin: requests the model cannot serve, or with
// settings graft train would refuse, get 400 with the reason, and never
// reach a plugin: the tenant gets no instance, so nothing was tokenized.
func TestRefusedBeforeThePlugin(t *testing.T) {
	svc, srv := testService(t, serviceOptions{MaxTenants: 4, MaxBody: 4 << 20})
	h := svc.h
	instances := h.Instances()
	records := `{"text": "Pip the owl hooted."}` + "\n"
	train := func(edit map[string]any) map[string]any {
		req := map[string]any{"data": records, "method": "lora", "steps": 2}
		for k, v := range edit {
			if v == nil {
				delete(req, k)
			} else {
				req[k] = v
			}
		}
		return req
	}
	for _, tc := range []struct {
		name, path string
		body       any
		want       string
	}{
		{"no data", "train", train(map[string]any{"data": nil}), "train data is empty"},
		{"bad JSONL", "train", train(map[string]any{"data": "{not json}\n"}), "train data:1"},
		{"unknown method", "train", train(map[string]any{"method": "sorcery"}), `method "sorcery" is not supported`},
		{"no steps", "train", train(map[string]any{"steps": nil}), "set steps or epochs"},
		{"negative lr", "train", train(map[string]any{"lr": -1}), "lr is -1"},
		{"rank 0", "train", train(map[string]any{"options": map[string]any{"r": 0}}), "lora: "},
		{"seq_len over the context", "train", train(map[string]any{"seq_len": 4096}), "seq_len 4096 exceeds the model's context of 512"},
		{"virtual tokens over the context", "train", train(map[string]any{"method": "prompt-tuning", "seq_len": 500}),
			"seq_len 500 and 20 virtual tokens exceed the model's context of 512"},
		{"config and method", "train", train(map[string]any{"config": map[string]any{"peft_type": "LORA", "r": 4}}), "not both"},
		{"1 MB prompt", "generate", map[string]any{"prompt": strings.Repeat("Once upon a time. ", 1<<20/18), "max_tokens": 5},
			"the model's context is 512 tokens"},
		{"prompt ids over the context", "generate", map[string]any{"prompt_ids": make([]int32, 512)}, "prompt_ids has 512 tokens, over the 511 that fit"},
		{"prompt id outside the vocabulary", "generate", map[string]any{"prompt_ids": []int32{1, 512}}, "prompt_ids[1] is 512, outside the model's vocabulary of 512"},
		{"negative max_tokens", "generate", map[string]any{"prompt": "Once", "max_tokens": -1}, "max_tokens -1"},
		{"eval text over the context", "eval", map[string]any{"texts": []string{"ok", strings.Repeat("Pip flew. ", 4000)}}, "texts[1] of 40000 bytes"},
		{"nothing to eval", "eval", map[string]any{}, "give texts or sequences"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := post(t, srv, "/tenants/dave/"+tc.path, tc.body, http.StatusBadRequest)
			if msg, _ := out["error"].(string); !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q, want it to say %q", msg, tc.want)
			}
		})
	}
	health := map[string]int{}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	if health["tenants"] != 0 || h.Instances() != instances {
		t.Fatalf("after refused requests: %v, %d instances (was %d): a request reached a plugin", health, h.Instances(), instances)
	}
}

// TestPromptOverTheContext: a prompt short enough in bytes to reach the
// plugin, whose tokens still do not fit in the context, is 400 too.
func TestPromptOverTheContext(t *testing.T) {
	_, srv := testService(t, serviceOptions{MaxTenants: 1, MaxBody: 1 << 20})
	prompt := strings.Repeat("Once upon a time. ", 120) // 2160 bytes, 602 tokens
	out := post(t, srv, "/tenants/frank/generate", map[string]any{"prompt": prompt, "max_tokens": 5}, http.StatusBadRequest)
	if msg, _ := out["error"].(string); !strings.Contains(msg, "prompt has 602 tokens, want 1 to 511 (the model's context is 512)") {
		t.Fatalf("error %q", msg)
	}
}

// TestTrainDefaults: settings a request leaves out take graft train's
// defaults: the method (LoRA), its learning rate and adapter settings,
// then train.Spec's.
func TestTrainDefaults(t *testing.T) {
	_, srv := testService(t, serviceOptions{MaxTenants: 1, MaxBody: 1 << 20})
	res := post(t, srv, "/tenants/erin/train", map[string]any{
		"data": `{"text": "Pip the owl hooted."}` + "\n" + `{"text": "Pip flew home."}` + "\n", "steps": 1, "seq_len": 32,
	}, http.StatusOK)
	lora, err := peft.LookupMethod("lora")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := res["spec"].(map[string]any)
	options, _ := spec["options"].(map[string]any)
	if spec["method"] != "lora" || spec["lr"] != lora.LR || options["r"] != float64(lora.Defaults["r"].(int)) ||
		spec["batch"] != float64(train.DefaultBatch) || spec["schedule"] != train.DefaultSchedule {
		t.Fatalf("trained with %v; want lr %g, r %v, batch %d, schedule %s", spec, lora.LR, lora.Defaults["r"], train.DefaultBatch, train.DefaultSchedule)
	}
}

// TestBadModelRefusedAtStart: a model file the plugin cannot load stops
// the service at start-up with an error naming the file.
func TestBadModelRefusedAtStart(t *testing.T) {
	h := testHost(t)
	gguf, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	instances := h.Instances()
	for _, path := range []string{
		write("garbage.gguf", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000)),
		write("truncated.gguf", gguf[:len(gguf)/2]),
		write("header-only.gguf", gguf[:64]),
		write("train.jsonl", []byte(`{"text": "Pip the owl hooted."}`+"\n")),
		write("empty.gguf", nil),
		filepath.Join(dir, "missing.gguf"),
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			svc, err := newService(context.Background(), h, path, serviceOptions{MaxTenants: 1, MaxBody: 1 << 20})
			if err == nil {
				svc.closeAll(context.Background())
				t.Fatal("the service started")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("%v does not name %s", err, path)
			}
			t.Log(err)
		})
	}
	if h.Instances() != instances {
		t.Fatalf("%d instances left open (was %d)", h.Instances(), instances)
	}
}
