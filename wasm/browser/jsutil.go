//go:build js && wasm

package main

import (
	"encoding/json"
	"fmt"
	"syscall/js"
)

// promise runs work in a goroutine and returns a Promise of its result:
// a js.Value, or a rejection with an Error whose message is work's error.
func promise(work func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer executor.Release()
			v, err := safely(work)
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

// safely turns a panic in work (a bug, or a backend's programming error)
// into an error, so that one bad call rejects its promise instead of
// killing the worker.
func safely(work func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graft: internal error: %v", r)
		}
	}()
	return work()
}

// bytesOf copies a Uint8Array into Go memory in one call.
func bytesOf(v js.Value, what string) ([]byte, error) {
	if v.Type() != js.TypeObject || !v.InstanceOf(js.Global().Get("Uint8Array")) {
		return nil, fmt.Errorf("%s must be a Uint8Array", what)
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b, nil
}

// uint8Array copies b into a new Uint8Array in one call.
func uint8Array(b []byte) js.Value {
	a := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// stringArg returns args[i] as a string.
func stringArg(args []js.Value, i int, what string) (string, error) {
	if i >= len(args) || args[i].Type() != js.TypeString {
		return "", fmt.Errorf("%s must be a string", what)
	}
	return args[i].String(), nil
}

// jsonArg decodes args[i], a JSON string, into v.
func jsonArg(args []js.Value, i int, what string, v any) error {
	s, err := stringArg(args, i, what)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// jsonValue encodes v as a JSON string for JavaScript to parse.
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}
