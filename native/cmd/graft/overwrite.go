package main

import (
	"errors"
	"io/fs"

	"github.com/spf13/pflag"

	"github.com/graft-ml/graft/core/atomicfile"
)

// addOverwriteFlag lets a command that writes --out replace what is
// there; without it an existing output is refused (checkOutput).
// graft quantize defines its own, for its positional OUT.
func addOverwriteFlag(fs *pflag.FlagSet) *bool {
	return fs.Bool("overwrite", false, "replace --out when it exists (default: refuse)")
}

// checkOutput refuses an existing output (a file, a directory holding
// files) unless --overwrite, before any work is done: a merged or
// quantized model is expensive to remake and easy to clobber.
func checkOutput(out string, overwrite bool) error {
	if overwrite {
		return nil
	}
	if err := atomicfile.CheckAbsent(out); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return usagef("%v; pass --overwrite to replace it", err)
		}
		return err
	}
	return nil
}
