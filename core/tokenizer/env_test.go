package tokenizer

import "runtime"

const isWasm = runtime.GOARCH == "wasm"
