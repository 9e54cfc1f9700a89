package host

import _ "embed"

// pluginWasm is wasm/plugin built for GOOS=wasip1 by `make wasm`; a test
// fails when it is older than its sources.
//
//go:embed plugin.wasm
var pluginWasm []byte

// Plugin returns the embedded plugin module (do not modify it).
func Plugin() []byte { return pluginWasm }
