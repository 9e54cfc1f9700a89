package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeRoot lays out the files the server maps.
func fakeRoot(t *testing.T, withWasm bool) string {
	root := t.TempDir()
	files := map[string]string{
		"examples/browser/web/index.html":     "<title>graft</title>",
		"bindings/js/index.js":                "export {}",
		"models/stories260K/stories260K.gguf": "GGUF",
	}
	if withWasm {
		files["bindings/js/dist/graft.wasm"] = "\x00asm"
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestRoutes(t *testing.T) {
	t.Setenv("GRAFT_DEMO_QUIET", "1")
	h, err := newHandler(fakeRoot(t, true))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, body, ctype string }{
		{"/", "<title>graft</title>", "text/html"},
		{"/graft/index.js", "export {}", "text/javascript"},
		{"/graft/dist/graft.wasm", "\x00asm", "application/wasm"},
		{"/models/stories260K/stories260K.gguf", "GGUF", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.path, nil))
		if rec.Code != 200 || rec.Body.String() != c.body || !strings.HasPrefix(rec.Header().Get("Content-Type"), c.ctype) {
			t.Errorf("%s: %d %q %q", c.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
		}
	}
}

func TestMissingWasm(t *testing.T) {
	if _, err := newHandler(fakeRoot(t, false)); err == nil || !strings.Contains(err.Error(), "make wasm-browser") {
		t.Fatalf("err %v, want a hint to build graft.wasm", err)
	}
}
