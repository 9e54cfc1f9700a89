package gguf

import (
	"errors"
	"fmt"
)

// ErrLegacyFormat is wrapped by the error for a file in one of the
// formats llama.cpp used before GGUF (August 2023): GGML, GGMF, GGJT, and
// GGLA for LoRA adapters.
var ErrLegacyFormat = errors.New("legacy llama.cpp format")

// convertModel is how llama.cpp turns an old model file into GGUF.
const convertModel = "convert it with llama.cpp's convert_llama_ggml_to_gguf.py " +
	"(python convert_llama_ggml_to_gguf.py --input OLD.bin --output NEW.gguf), or convert the original model again with convert_hf_to_gguf.py"

// legacyFormats are the pre-GGUF formats by the bytes their files start
// with: each wrote its magic as a little-endian uint32, so 'ggjt' is
// stored as "tjgg".
var legacyFormats = map[string]error{
	"lmgg": legacy("GGML (unversioned)", convertModel),
	"fmgg": legacy("GGMF", convertModel),
	"tjgg": legacy("GGJT", convertModel),
	"algg": legacy("GGLA (a LoRA adapter)", "convert the PEFT adapter it came from again with llama.cpp's convert_lora_to_gguf.py, or load that adapter directory in graft directly"),
}

func legacy(name, how string) error {
	return fmt.Errorf("a %s file, the %w that GGUF replaced in August 2023, which graft does not read; %s", name, ErrLegacyFormat, how)
}
