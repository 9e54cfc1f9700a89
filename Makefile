# graft: `make demo` runs the main job on the bundled model; `make test`
# runs every test (native, GOOS=js and GOOS=wasip1). Both work on a fresh
# machine with Go 1.26 and Node.js; missing tools are installed here.

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

.PHONY: vulkan bench bench-kernels bench-e2e all build demo test test-native test-js test-wasip1 lint fuzz golden clean llamacpp wasm-browser serve-demo test-browser wasm bench-plugin

all: build

build:
	$(GO) build -o $(GRAFT) ./native/cmd/graft

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
		--out $(DEMO_OUT)
	@echo
	@echo "== after: the same prompt with the adapter ($(DEMO_OUT)) =="
	@$(GRAFT) generate --model $(MODEL) --adapter $(DEMO_OUT) --prompt "$(DEMO_PROMPT)" --max-tokens 60 --temperature 0
	@echo
	@echo "adapter (Hugging Face PEFT format), metrics.jsonl and loss_curve.svg are in $(DEMO_OUT)"

test: lint test-native test-js test-wasip1 test-browser

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet $(CORE)
	GOOS=wasip1 GOARCH=wasm $(GO) vet $(CORE)
	GOOS=js GOARCH=wasm $(GO) vet ./gpu/ ./wasm/browser/...

# With Node.js present, the GGUF LoRA export is checked in llama.cpp.
# The gpu tests run on Mesa's software Vulkan driver (lavapipe).
test-native: vulkan $(if $(HAVE_NODE),llamacpp)
	VK_ICD_FILENAMES=$(LAVAPIPE_ICD) $(GO) test -timeout 20m ./...

vulkan:
	@if [ ! -e $(LAVAPIPE_ICD) ] || ! ldconfig -p | grep -q 'libvulkan.so.1 '; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y mesa-vulkan-drivers libvulkan1; fi

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

bench-kernels:
	$(GO) test -run '^$$' -bench . -benchtime $(KBENCH_TIME) -cpu $(BENCH_THREADS) ./core/cpu
	/usr/bin/python3 bench/torch_matmul.py $(BENCH_THREADS) || echo "bench: PyTorch matmul skipped: apt-get install python3-torch libopenblas0-pthread"

bench-e2e:
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
# tests cover; every kernel, format and gradient check still runs in wasm.
test-js:
	PATH="$(WASM_EXEC):$$PATH" GOOS=js GOARCH=wasm $(GO) test -short $(CORE) ./wasm/browser/...

# ... and as a WASI plugin: its tests run under wazero.
test-wasip1: $(WAZERO)
	PATH="$(WASM_EXEC):$(GOBIN_DIR):$$PATH" GOWASIRUNTIME=wazero GOOS=wasip1 GOARCH=wasm $(GO) test -short $(CORE)

$(WAZERO):
	$(GO) install github.com/tetratelabs/wazero/cmd/wazero@v1.12.0

# The plugin native/host embeds; rebuild it after changing wasm/plugin or the
# core it runs (a native/host test fails while it is stale).
PLUGIN_WASM := native/host/plugin.wasm
wasm:
	GOOS=wasip1 GOARCH=wasm GOWASM= CGO_ENABLED=0 GOFLAGS= $(GO) build -buildmode=c-shared -trimpath -buildvcs=false -ldflags='-s -w' -o $(PLUGIN_WASM) ./wasm/plugin

# Plugin figures: compile (cold, cached), instantiate, per-call overhead, eval.
bench-plugin:
	$(GO) test -run '^$$' -bench Compile -benchtime 1x ./native/host
	$(GO) test -run '^$$' -bench 'Instantiate|CallOverhead|Eval' ./native/host

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
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

$(PLAYWRIGHT): examples/browser/test/package.json examples/browser/test/package-lock.json
	cd examples/browser/test && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund

# bindings/js under Node's test runner, then the demo page in headless
# Chromium through Playwright (never a downloaded browser).
test-browser: wasm-browser $(CHROMIUM) $(PLAYWRIGHT)
	cd bindings/js && node --test test/
	cd examples/browser/test && node --test

# Short coverage-guided runs of every fuzz target (longer: FUZZTIME=5m).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./core/formats/gguf
	$(GO) test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./core/formats/safetensors
	$(GO) test -run='^$$' -fuzz=FuzzParseHFTokenizer -fuzztime=$(FUZZTIME) ./core/tokenizer
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./core/formats/bundle

# Regenerates the reference logits with Debian's python3-torch.
golden:
	/usr/bin/python3 tools/golden/llama_reference.py $(MODEL) core/model/testdata/stories260K_golden.json

clean:
	rm -rf $(BIN) out
