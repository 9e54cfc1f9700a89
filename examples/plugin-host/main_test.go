package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/formats/bundle"
	"github.com/graft-ml/graft/native/host"
)

// TestTenantsTrainTheirOwnAdapters: one tenant trains an adapter on Pip
// stories and its generations change; another tenant's do not.
func TestTenantsTrainTheirOwnAdapters(t *testing.T) {
	ctx := context.Background()
	gguf, err := os.ReadFile("../../models/stories260K/stories260K.gguf")
	if err != nil {
		t.Fatal(err)
	}
	trainData, err := os.ReadFile("../lora/data/train.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(ctx, host.Options{MemoryLimitMB: 256, Cooperative: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	svc := newService(h, gguf, 2)
	srv := httptest.NewServer(svc.routes())
	defer srv.Close()
	defer svc.closeAll(ctx)

	post := func(path string, body any, want int) map[string]any {
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
