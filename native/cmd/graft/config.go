package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/token"

	"github.com/graft-ml/graft/core/train"
)

// maxConfigFile bounds a --config file; a run's settings are a few
// kilobytes even with inline records.
const maxConfigFile = 64 << 20

// readSpecFile reads graft train's --config file: a train.Spec as JSON
// (.json) or YAML (.yaml, .yml), with the same keys either way. Unknown
// keys are errors. Paths in it are relative to the working directory, as
// on the command line.
func readSpecFile(path string) (train.Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return train.Spec{}, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return train.Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) > maxConfigFile {
		return train.Spec{}, fmt.Errorf("%s: larger than %d bytes", path, maxConfigFile)
	}
	js := raw
	switch format, err := configFormat(path); {
	case err != nil:
		return train.Spec{}, err
	case format == "yaml":
		if js, err = yaml.YAMLToJSON(yaml12Floats(raw)); err != nil {
			return train.Spec{}, fmt.Errorf("%s: %s", path, strings.TrimRight(yaml.FormatError(err, false, true), "\n"))
		}
	}
	s, err := train.ParseSpec(js)
	if err != nil {
		return train.Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// configFormat tells a config file's format by its extension.
func configFormat(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "json", nil
	case ".yaml", ".yml":
		return "yaml", nil
	}
	return "", fmt.Errorf("%s: unknown config extension %q (want .json, .yaml or .yml)", path, filepath.Ext(path))
}

// exponentFloat is a YAML 1.2 float written with an exponent and no
// point, such as 1e-4. YAML 1.1, which the YAML library follows, reads it
// as a string; people write learning rates that way.
var exponentFloat = regexp.MustCompile(`^[-+]?[0-9]+[eE][-+]?[0-9]+$`)

// yaml12Floats rewrites every plain (unquoted) scalar such as 1e-4 as
// 1.0e-4, which the YAML library reads as the float YAML 1.2 says it is.
// Quoted scalars stay strings. A scalar whose position cannot be matched
// in the source is left alone.
func yaml12Floats(src []byte) []byte {
	lines := bytes.SplitAfter(src, []byte("\n"))
	changed := false
	toks := lexer.Tokenize(string(src))
	// Last first, so that a rewrite does not move the scalars still to do.
	for i := len(toks) - 1; i >= 0; i-- {
		tok := toks[i]
		if tok.Type != token.StringType || !exponentFloat.MatchString(tok.Value) || tok.Position == nil {
			continue
		}
		line, col := tok.Position.Line-1, tok.Position.Column-1
		if line < 0 || line >= len(lines) || col < 0 || !bytes.HasPrefix(lines[line][min(col, len(lines[line])):], []byte(tok.Value)) {
			continue
		}
		at := col + bytes.IndexAny(lines[line][col:], "eE")
		l := append([]byte{}, lines[line][:at]...)
		l = append(l, ".0"...)
		lines[line] = append(l, lines[line][at:]...)
		changed = true
	}
	if !changed {
		return src
	}
	return bytes.Join(lines, nil)
}

// printSpec writes s as JSON or YAML.
func printSpec(w io.Writer, s train.Spec, format string) error {
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if js, err = yaml.JSONToYAML(js); err != nil {
			return err
		}
		_, err = w.Write(js)
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", js)
	return err
}
