package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// childResult is what one benchmark subprocess left behind.
type childResult struct {
	Line     map[string]any // its last stdout line, parsed as JSON
	PeakRSS  int64          // its peak resident set, bytes (0 if unknown)
	ExitCode int            // -1 when it could not be started
	Stderr   string
	Wall     time.Duration
}

// errNotFound marks a peer whose program is not installed.
var errNotFound = errors.New("not installed")

// runChild runs name with args in dir and parses the last line it prints as
// a JSON object. The child's peak RSS comes from the kernel's accounting
// for that process alone, so every workload is measured in a fresh process.
func runChild(dir, name string, args ...string) (childResult, error) {
	res := childResult{ExitCode: -1}
	path, err := exec.LookPath(name)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, errNotFound)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	res.Wall = time.Since(start)
	res.Stderr = strings.TrimSpace(stderr.String())
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
		res.PeakRSS = peakRSS(cmd.ProcessState)
	}
	if err != nil {
		return res, fmt.Errorf("%s %s: %w%s", name, strings.Join(args, " "), err, tail(res.Stderr))
	}
	line := lastLine(stdout.String())
	if err := json.Unmarshal([]byte(line), &res.Line); err != nil {
		return res, fmt.Errorf("%s: last output line %q is not a JSON object: %w%s", name, line, err, tail(res.Stderr))
	}
	return res, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// tail returns the end of a child's stderr for an error message.
func tail(stderr string) string {
	if stderr == "" {
		return ""
	}
	const keep = 600
	if len(stderr) > keep {
		stderr = "..." + stderr[len(stderr)-keep:]
	}
	return "\n" + stderr
}

// number reads a numeric field of a child's JSON line.
func (r childResult) number(key string) (float64, error) {
	v, ok := r.Line[key].(float64)
	if !ok {
		return 0, fmt.Errorf("output has no number %q: %v", key, r.Line)
	}
	return v, nil
}
