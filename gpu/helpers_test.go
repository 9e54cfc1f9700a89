package gpu

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"sync"
	"testing"
)

// lavapipeICD is where Debian's mesa-vulkan-drivers puts Mesa's software
// Vulkan driver.
const lavapipeICD = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"

func TestMain(m *testing.M) {
	// Tests run on whatever Vulkan driver VK_ICD_FILENAMES names, and on
	// lavapipe when it names none, so that results do not depend on the
	// machine's GPU. Benchmarks measure the machine's own drivers.
	flag.Parse()
	// The shared suite leaves its buffers to the garbage collector, which
	// gogpu reports as leaks at warning level; keep the test log readable.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	benchmarking := flag.Lookup("test.bench").Value.String() != ""
	if os.Getenv("VK_ICD_FILENAMES") == "" && !benchmarking {
		if _, err := os.Stat(lavapipeICD); err == nil {
			os.Setenv("VK_ICD_FILENAMES", lavapipeICD)
		}
	}
	os.Exit(m.Run())
}

var shared struct {
	once sync.Once
	b    *Backend
	err  error
}

// testBackend returns the backend shared by the package's tests, failing
// with the packages to install when there is no Vulkan driver.
func testBackend(t *testing.T) *Backend {
	t.Helper()
	shared.once.Do(func() { shared.b, shared.err = New(Options{AllowSoftware: true}) })
	if shared.err != nil {
		if errors.Is(shared.err, ErrNoAdapter) {
			t.Fatalf("no Vulkan adapter for the gpu tests: %v\n"+
				"install Mesa's software driver: apt-get install -y mesa-vulkan-drivers libvulkan1", shared.err)
		}
		t.Fatal(shared.err)
	}
	return shared.b
}
