# graft: `make demo` runs the main job on the bundled model; `make test`
# runs every test (native, with the race detector, GOOS=js and
# GOOS=wasip1). Both work on a fresh machine with Go 1.26 and Node.js;
# missing tools are installed here.

GO        ?= go
BIN       := bin
GRAFT     := $(BIN)/graft
MODEL     := models/stories260K/stories260K.gguf
GOROOT    := $(shell $(GO) env GOROOT)
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin
WAZERO    := $(GOBIN_DIR)/wazero
WASM_EXEC := $(GOROOT)/lib/wasm
CORE      := ./core/...
LLAMACPP  := tools/llamacpp
LAVAPIPE_ICD := /usr/share/vulkan/icd.d/lvp_icd.x86_64.json
HAVE_NODE := $(shell command -v node 2>/dev/null)

.PHONY: test-tools test-stages check-asm test-arm64 test-purego test-race cgo-cc vulkan bench bench-kernels bench-e2e bench-gpu torch-peer all build demo test test-native test-js test-wasip1 lint fuzz golden clean llamacpp wasm-browser serve-demo test-browser bench-browser wasm bench-plugin install

all: build

build:
	$(GO) build -o $(GRAFT) ./native/cmd/graft

# install puts graft in $(go env GOBIN), else $(go env GOPATH)/bin. The
# module is not published, so go install ...@latest cannot fetch it; this
# installs the clone it runs in (graft version names its commit).
install:
	$(GO) install ./native/cmd/graft

# The demo fine-tunes the bundled stories260K with LoRA on stories about a
# character it has never met (examples/lora/data) and shows a generation
# before and after: under a minute on 2 cores.
DEMO_OUT    := out/demo-lora
DEMO_PROMPT := Once upon a time, there was a little blue owl
demo: build
	@echo "== before: the base model continues the prompt =="
	@$(GRAFT) generate --model $(MODEL) --prompt "$(DEMO_PROMPT)" --max-tokens 60 --temperature 0
	@echo
	@echo "== LoRA r=8 on q,k,v,o: 200 steps on examples/lora/data/train.jsonl =="
	@$(GRAFT) train --model $(MODEL) --data examples/lora/data/train.jsonl --eval examples/lora/data/eval.jsonl \
		--method lora --r 8 --alpha 16 --target q_proj,k_proj,v_proj,o_proj \
		--steps 200 --batch 4 --seq-len 128 --pack --lr 5e-3 --warmup 10 --eval-every 50 --seed 1 \
		--out $(DEMO_OUT) --overwrite
	@echo
	@echo "== after: the same prompt with the adapter ($(DEMO_OUT)) =="
	@$(GRAFT) generate --model $(MODEL) --adapter $(DEMO_OUT) --prompt "$(DEMO_PROMPT)" --max-tokens 60 --temperature 0
	@echo
	@echo "adapter (Hugging Face PEFT format), metrics.jsonl and loss_curve.svg are in $(DEMO_OUT)"

# The stages run side by side, TEST_JOBS at a time (make -j): on two cores
# one stage's waits (lavapipe's and Chromium's fences, the single-threaded
# wasm runs) are filled with another's work. Each stage's output is printed
# whole when it ends, with its time; `make test TEST_JOBS=1` runs them one
# after the other. In three steps:
#  1. check-asm, alone: it rewrites core/cpu's generated files (with the
#     same bytes, when they are current), which every other stage compiles;
#  2. lint, while the tools the tests use are installed where missing
#     (downloads, which wait on the network, so they all run at once);
#  3. the test stages, the longest first, so that none starts last alone.
TEST_JOBS ?= 3
test: check-asm
	@$(MAKE) --no-print-directory -j$(if $(filter 1,$(TEST_JOBS)),1,8) --output-sync=target lint test-tools
	@$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-stages TOOLS_READY=1

# TOOLS_READY (set by make test, whose second step installed them) drops
# the stages' phony tool checks: each was a job of its own, and while one
# ran make went on to start the later stages, so that test-native and
# test-race, the longest, started last.
test-stages: test-native test-wasip1 test-race test-js test-browser test-purego test-arm64

# go test's own vet pass is off in the stages (-vet=off): lint has vetted
# every package they test, for each GOOS, with all of vet's analyzers, a
# superset of the few go test runs.
TEST_FLAGS := -vet=off -timeout 30m

# $(call timed,COMMAND) runs COMMAND and says how long the stage took.
timed = start=$$(date +%s); $(1) && echo "== $@ passed in $$(( $$(date +%s) - start )) s"

# apt-get for a missing test tool. Parallel stages may need one each, and
# dpkg installs one at a time: flock queues them.
APT_INSTALL := flock /tmp/graft-apt.lock env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update && apt-get install -y "$$@"' apt-install

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet $(CORE)
	GOOS=wasip1 GOARCH=wasm $(GO) vet $(CORE) ./wasm/plugin/...
	GOOS=js GOARCH=wasm $(GO) vet ./gpu/ ./wasm/browser/... ./wasm/simd

# With Node.js present, the GGUF LoRA export is checked in llama.cpp.
# The gpu tests run on Mesa's software Vulkan driver (lavapipe).
# go test starts the packages' tests in the order it is given them, two at
# a time: NATIVE_FIRST, the packages whose tests take minutes (llama.cpp,
# lavapipe, CLI training runs, the plugin under wazero), go first, so that
# the many short ones fill the gaps instead of those ending the stage alone.
NATIVE_FIRST := ./internal/randgguf ./native/cmd/graft ./gpu ./core/train ./native/host ./examples/plugin-host
NATIVE_PKGS = $(NATIVE_FIRST) $(filter-out $(NATIVE_FIRST),$(patsubst $(shell $(GO) list -m)/%,./%,$(shell $(GO) list ./...)))
test-native: $(if $(TOOLS_READY),,vulkan $(if $(HAVE_NODE),llamacpp))
	$(call timed,VK_ICD_FILENAMES=$(LAVAPIPE_ICD) $(GO) test $(TEST_FLAGS) $(NATIVE_PKGS))

# The amd64 kernels (core/cpu/gemm_amd64.s) are generated by tools/asmgen
# with avo, the browser's WebAssembly SIMD128 kernels (wasm/simd/kernels.wasm)
# by tools/wasmsimd; CI checks that the committed files are what they generate.
check-asm:
	$(GO) generate ./core/cpu ./wasm/simd
	@git diff --exit-code --stat core/cpu/gemm_amd64.s core/cpu/gemm_stubs_amd64.go wasm/simd/kernels.wasm || \
		{ echo "generated kernels are stale: run go generate ./core/cpu ./wasm/simd and commit"; exit 1; }

# Native graft runs SIMD kernels, which sum in another order than the
# plugin's portable ones; built with -tags purego (the portable kernels)
# the two must agree bit for bit.
test-purego:
	$(call timed,$(GO) test $(TEST_FLAGS) -tags purego -run 'PluginMatchesNative|ExportedAdapterLoadsNatively' ./native/host)

# The arm64 NEON kernels (core/cpu/kernels_arm64.s) on a machine without
# an arm64 CPU: core/cpu's tests built for linux/arm64 (static, as Go
# binaries are) run under qemu-user, each kernel against the portable one.
# qemu's timings say nothing about arm64 hardware. -cpu max emulates a
# CPU with the dot-product extension, which the integer dot kernels
# (intdot_arm64.s) need to be switched in.
ARM64_TESTS := TestGemmKernels/neon/1threads|TestVectorKernels|TestExpShift|TestSigmoids|TestDecodeFast|TestMatMulGGMLTypes|TestQuantDot|TestRoPE|TestSoftmax|TestCrossEntropy|TestSiLUMulBackward|TestIntDot
QEMU := /usr/bin/qemu-aarch64
$(QEMU):
	$(APT_INSTALL) qemu-user

test-arm64: $(QEMU)
	GOARCH=arm64 $(GO) vet ./core/cpu
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./native/cmd/graft
	@bin=$$(mktemp -d)/cpu-arm64.test; \
	GOOS=linux GOARCH=arm64 $(GO) test -c -o $$bin ./core/cpu && \
	$(call timed,qemu-aarch64 -cpu max $$bin -test.short -test.run '$(ARM64_TESTS)'); rc=$$?; rm -r $$(dirname $$bin); exit $$rc

# The data-race detector on the packages that run goroutines: the CPU
# kernels' worker pool, the trainer, and the plugin host's tenants. -short
# leaves out only two slow tests that test-native runs anyway (50 tenants,
# the plugin rebuild). -race needs cgo, hence a C compiler.
RACE_PKGS := ./core/cpu ./core/train ./native/host
test-race: $(if $(TOOLS_READY),,cgo-cc)
	$(call timed,CGO_ENABLED=1 $(GO) test -race -short $(TEST_FLAGS) $(RACE_PKGS))

# A C compiler for cgo (the race detector's runtime is linked with it).
cgo-cc:
	@if ! command -v "$$($(GO) env CC)" >/dev/null 2>&1; then \
		$(APT_INSTALL) gcc libc6-dev; fi

vulkan:
	@if [ ! -e $(LAVAPIPE_ICD) ] || ! ldconfig -p | grep -q 'libvulkan.so.1 '; then \
		$(APT_INSTALL) mesa-vulkan-drivers libvulkan1; fi

# `make bench`, offline (bench/README.md says how to read it): (1) the CPU
# kernels' GFLOP/s beside PyTorch's matrix products, (2) LoRA training and
# greedy generation end to end beside PyTorch and llama.cpp, peak RSS
# included, (3) the GPU kernels, whose rows say "no GPU" where there is
# none. About 10 minutes on 2 cores; the variables shorten or lengthen it,
# e.g. make bench BENCH_ONLY=stories BENCH_STORIES_STEPS=30.
BENCH_THREADS            ?= 2
BENCH_STEPS              ?= 2
BENCH_STORIES_STEPS      ?= 10
BENCH_WARMUP             ?= 1
BENCH_GEN_TOKENS         ?= 64
BENCH_STORIES_GEN_TOKENS ?= 400
BENCH_ONLY               ?=
BENCH_FLAGS              ?=
KBENCH_TIME              ?= 1s
bench: bench-kernels bench-e2e
	$(GO) test -run '^$$' -bench . -benchtime 10x -v ./gpu | grep -E '^(Benchmark|--- SKIP)|no GPU'

# PyTorch as the peer of the training and matrix-product rows needs
# Debian's python3-torch and OpenBLAS's pthread build: with only the
# reference BLAS that libblas.so.3 falls back to, torch's products run about
# ten times slower and the ratios against it would flatter graft. Installed
# when missing (where apt-get exists); if that fails the rows say the peer
# is missing.
TORCH_DEBS := python3-torch libopenblas0-pthread
torch-peer:
	@if command -v apt-get >/dev/null 2>&1; then \
		missing=; for p in $(TORCH_DEBS); do \
			dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then $(APT_INSTALL) $$missing || \
			echo "bench: could not install$$missing: the PyTorch rows will say the peer is missing"; fi; fi

bench-kernels: torch-peer
	$(GO) test -run '^$$' -bench . -benchtime $(KBENCH_TIME) -cpu $(BENCH_THREADS) ./core/cpu
	/usr/bin/python3 bench/torch_matmul.py $(BENCH_THREADS) || echo "bench: PyTorch matmul skipped: apt-get install python3-torch libopenblas0-pthread"

# `make bench-gpu`: the WebGPU backend on this machine's GPU (bench/gpu.sh):
# matmul GFLOP/s at 1024^3 and 4096^3 beside the adapter's FP32 peak, LoRA
# tokens/s at SmolLM-135M's shape against the CPU, generation tokens/s,
# peak device memory. Without a GPU, on lavapipe and small sizes:
# make bench-gpu BENCH_GPU_FLAGS="-allow-software -sizes 256,512 -shape tiny"
BENCH_GPU_FLAGS ?=
bench-gpu:
	bench/gpu.sh $(BENCH_GPU_FLAGS)

bench-e2e: torch-peer
	$(GO) run ./bench/e2e -threads $(BENCH_THREADS) -steps $(BENCH_STEPS) -stories-steps $(BENCH_STORIES_STEPS) \
		-warmup $(BENCH_WARMUP) -gen-tokens $(BENCH_GEN_TOKENS) -stories-gen-tokens $(BENCH_STORIES_GEN_TOKENS) \
		$(if $(BENCH_ONLY),-only $(BENCH_ONLY)) $(BENCH_FLAGS)

# llama.cpp for that check (native/cmd/graft/export_test.go): node-llama-cpp
# and its prebuilt CPU binary from the npm lock, never built from source.
llamacpp: $(LLAMACPP)/node_modules/.package-lock.json

$(LLAMACPP)/node_modules/.package-lock.json: $(LLAMACPP)/package.json $(LLAMACPP)/package-lock.json
	cd $(LLAMACPP) && npm ci --ignore-scripts --no-audit --no-fund

# The core runs in browsers: its tests run under Node.js with Go's js/wasm
# shim. -short skips only the multi-step training runs, which the native
# tests cover; every kernel, format and gradient check still runs in wasm,
# and the browser engine trains every PEFT method against native graft
# (internal/parity/nativeruns, started through Node). wasm/simd/node's
# go_js_wasm_exec is Go's own loader that also exposes Go's memory, as
# bindings/js does in a browser, so the SIMD128 kernels are tested too.
test-js:
	$(call timed,PATH="$(CURDIR)/wasm/simd/node:$(WASM_EXEC):$$PATH" GOOS=js GOARCH=wasm $(GO) test -short $(TEST_FLAGS) $(CORE) ./wasm/browser/... ./wasm/simd)

# ... and as a WASI plugin: the plugin's own tests (which train every PEFT
# method through its exports and compare with native graft), and the tests
# of the core packages that use the operating system (files, directories,
# temporary names), whose WASI calls differ from Node's. The other core
# packages are pure computation: the same wasm code test-js runs under
# Node, so running them again under wazero would test nothing new.
# For the same reason WASIP1_SKIP leaves out the tests of those packages
# that are pure computation once their model is loaded: the gradient checks
# (finite differences, all named ...Gradient...) and PiSSA's SVD, which
# took minutes each under wazero and which test-js runs as the same wasm
# code (the files they write and read are other tests' subject here, e.g.
# TestFamiliesSaveRoundTrip).
CORE_OS_PKGS = $(shell $(GO) list -f '{{range .Imports}}{{if eq . "os"}}{{$$.ImportPath}}{{end}}{{end}}' $(CORE))
WASIP1_SKIP := Gradient|^TestPiSSAInitKeepsLogits$$
test-wasip1: $(WAZERO)
	$(call timed,PATH="$(WASM_EXEC):$(GOBIN_DIR):$$PATH" GOWASIRUNTIME=wazero GOOS=wasip1 GOARCH=wasm $(GO) test -short $(TEST_FLAGS) -skip '$(WASIP1_SKIP)' $(CORE_OS_PKGS) ./wasm/plugin/...)

$(WAZERO):
	$(GO) install github.com/tetratelabs/wazero/cmd/wazero@v1.12.0

# The plugin native/host embeds; rebuild it after changing wasm/plugin or the
# core it runs (a native/host test fails while it is stale).
PLUGIN_WASM := native/host/plugin.wasm
wasm:
	GOOS=wasip1 GOARCH=wasm GOWASM= CGO_ENABLED=0 GOFLAGS= $(GO) build -buildmode=c-shared -tags graft_hostkernels -trimpath -buildvcs=false -ldflags='-s -w' -o $(PLUGIN_WASM) ./wasm/plugin

# Plugin figures: compile (cold, cached), instantiate, per-call overhead,
# eval and LoRA training beside native, on stories260K and on the
# SmolLM-135M shape.
bench-plugin:
	$(GO) test -run '^$$' -bench Compile -benchtime 1x ./native/host
	$(GO) test -run '^$$' -bench 'Instantiate|CallOverhead|Eval|TrainLoRA' ./native/host
	$(GO) test -run '^$$' -bench SmolShape -benchtime 1x ./native/host

# The browser build: graft.wasm and Go's wasm_exec.js for bindings/js.
BROWSER_DIST := bindings/js/dist
CHROMIUM     := /usr/bin/chromium
PLAYWRIGHT   := examples/browser/test/node_modules/playwright-core/package.json

wasm-browser:
	mkdir -p $(BROWSER_DIST)
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags=-s -o $(BROWSER_DIST)/graft.wasm ./wasm/browser
	cp $(WASM_EXEC)/wasm_exec.js $(BROWSER_DIST)/wasm_exec.js
	cp $(GOROOT)/LICENSE $(BROWSER_DIST)/wasm_exec.LICENSE

# The personalization demo on http://127.0.0.1:8090/.
serve-demo: wasm-browser
	$(GO) run ./examples/browser -addr 127.0.0.1:8090

$(CHROMIUM):
	$(APT_INSTALL) chromium

$(PLAYWRIGHT): examples/browser/test/package.json examples/browser/test/package-lock.json
	cd examples/browser/test && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund

# bindings/js under Node's test runner, then the demo page in headless
# Chromium through Playwright (never a downloaded browser).
test-browser: wasm-browser $(CHROMIUM) $(PLAYWRIGHT)
	$(call timed,cd bindings/js && node --test test/ && cd ../../examples/browser/test && node --test)

# Browser CPU training beside native (examples/browser/bench.mjs): the
# demo's presets in headless Chromium with graft's WebAssembly SIMD128
# kernels and with the portable Go ones, and the same requests natively on
# 2 threads and 1, best of ROUNDS runs each (about 5 minutes on 2 cores).
bench-browser: wasm-browser $(CHROMIUM) $(PLAYWRIGHT)
	node examples/browser/bench.mjs

# Every tool a test stage installs where it is missing (make test's second
# step). Here, below the variables it names: a rule's prerequisites are
# expanded as make reads it.
test-tools: vulkan cgo-cc $(if $(HAVE_NODE),llamacpp) $(WAZERO) $(CHROMIUM) $(PLAYWRIGHT) $(QEMU)

# Short coverage-guided runs of every fuzz target (longer: FUZZTIME=5m).
# The targets are found, never listed by hand: the packages whose tests
# declare a func Fuzz..., then `go test -list` for their exact names (only
# those packages are built, not every test binary of ./...).
# Go minimizes each new interesting input for up to 60s by default, during
# which that worker runs nothing else: capped here, so that short runs fuzz.
FUZZTIME ?= 20s
FUZZMINIMIZETIME ?= 2s
fuzz:
	@pkgs=$$(grep -rl --include='*_test.go' --exclude-dir=node_modules '^func Fuzz' . | xargs -n1 dirname | sort -u); \
	list=$$($(GO) test -list '^Fuzz' $$pkgs) || { echo "$$list"; exit 1; }; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ {f[n++] = $$1; next} /^ok/ {for (i = 0; i < n; i++) print $$2, f[i]; n = 0}'); \
	[ -n "$$targets" ] || { echo "fuzz: no fuzz targets found"; exit 1; }; \
	echo "$$targets" | while read pkg fn; do \
		echo "== $$fn ($$pkg)"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINIMIZETIME) $$pkg || exit 1; \
	done

# Regenerates the reference logits with Debian's python3-torch.
golden:
	/usr/bin/python3 tools/golden/llama_reference.py $(MODEL) core/model/testdata/stories260K_golden.json

clean:
	rm -rf $(BIN) out
