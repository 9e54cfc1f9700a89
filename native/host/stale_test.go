package host

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestEmbeddedPluginIsFresh rebuilds wasm/plugin exactly as `make wasm`
// does and compares it with the embedded plugin.wasm: a change to the
// plugin or the core it runs, without `make wasm`, fails here. The build
// is reproducible (-trimpath, no VCS stamp), so equal sources with the
// same Go toolchain give equal bytes.
func TestEmbeddedPluginIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin; skipped in -short mode")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to rebuild the plugin: %v", err)
	}
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	cmd := exec.Command(goTool, pluginBuildArgs(out)...)
	cmd.Dir = "../.." // the module root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWASM=", "CGO_ENABLED=0", "GOFLAGS=")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the plugin: %v\n%s", err, msg)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, pluginWasm) {
		t.Fatalf("native/host/plugin.wasm is stale (embedded sha256 %x, %d bytes; fresh build %x, %d bytes): run `make wasm`",
			sha256.Sum256(pluginWasm), len(pluginWasm), sha256.Sum256(fresh), len(fresh))
	}
}

// pluginBuildArgs are the go arguments `make wasm` uses (with GOOS=wasip1
// GOARCH=wasm in the environment).
func pluginBuildArgs(out string) []string {
	return []string{"build", "-buildmode=c-shared", "-tags=graft_hostkernels", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./wasm/plugin"}
}
