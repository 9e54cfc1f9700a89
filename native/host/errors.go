package host

import (
	"errors"

	"github.com/graft-ml/graft/wasm/plugin/abi"
)

var (
	// ErrClosed is returned by calls on an instance (or host) that was
	// closed, by Close or because a call past its deadline, out of memory
	// or a crash ended it; Instance.Err says which.
	ErrClosed = errors.New("instance is closed")
	// ErrMemoryLimit reports a guest that needed more memory than
	// Options.MemoryLimitMB allows, a request larger than that cap, or (from
	// New) a cap below the memory the plugin starts with.
	ErrMemoryLimit = errors.New("plugin memory limit reached")
	// ErrCrashed reports a guest that trapped, exited or broke the ABI.
	ErrCrashed = errors.New("plugin crashed")
	// ErrABIVersion reports a plugin built for another ABI version.
	ErrABIVersion = errors.New("plugin ABI version mismatch")
	// ErrInvalidPlugin reports bytes that are not a usable plugin module.
	ErrInvalidPlugin = errors.New("invalid plugin module")
)

// Errors a plugin reports for a call it refused or that failed; match them
// with errors.Is on a returned *CallError.
var (
	ErrBadRequest = errors.New(abi.CodeBadRequest)
	ErrNoModel    = errors.New(abi.CodeNoModel)
	ErrNotFound   = errors.New(abi.CodeNotFound)
	ErrExists     = errors.New(abi.CodeExists)
	ErrStopped    = errors.New(abi.CodeStopped)
	// ErrInterrupted: the call's deadline (or cancellation) ended it at a
	// safe point; the instance is intact. The error also matches the
	// context's error.
	ErrInterrupted = errors.New(abi.CodeInterrupted)
	ErrFailed      = errors.New(abi.CodeFailed)
)

var codeErrors = map[string]error{
	abi.CodeBadRequest:  ErrBadRequest,
	abi.CodeNoModel:     ErrNoModel,
	abi.CodeNotFound:    ErrNotFound,
	abi.CodeExists:      ErrExists,
	abi.CodeStopped:     ErrStopped,
	abi.CodeInterrupted: ErrInterrupted,
	abi.CodeFailed:      ErrFailed,
}

// CallError is an error the plugin returned for one call. The instance
// stays usable.
type CallError struct {
	Instance string // the instance's name
	Op       string // the operation
	Code     string // one of the abi.Code* values
	Message  string // the plugin's explanation

	cause error // the context's error of an interrupted call
}

func (e *CallError) Error() string {
	return "plugin " + e.Instance + ": " + e.Code + ": " + e.Message
}

// Unwrap returns the context's error (context.DeadlineExceeded or
// context.Canceled) of an interrupted call, else nil.
func (e *CallError) Unwrap() error { return e.cause }

// Is matches the Err* value of the error's code (ErrBadRequest, ...).
func (e *CallError) Is(target error) bool {
	known, ok := codeErrors[e.Code]
	return ok && known == target
}
