package tokenizer

import "unicode/utf8"

// GPT-2's byte-level alphabet (bytes_to_unicode in OpenAI's encoder.py)
// gives every byte a printable character so that vocabulary entries are
// readable strings: printable Latin-1 bytes stand for themselves, and the
// others (controls, space, a few Latin-1 gaps) are moved to U+0100
// onwards in byte order. Space thus becomes 'Ġ' (U+0120) and '\n' 'Ċ'.
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	next := rune(256)
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = next
			next++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// appendByteLevel appends the byte-level spelling of s to dst.
func appendByteLevel(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = utf8.AppendRune(dst, byteToRune[s[i]])
	}
	return dst
}

// byteLevelDecode maps a byte-level vocabulary entry back to the bytes it
// stands for. Characters outside the alphabet (found in added tokens) are
// kept as their UTF-8 encoding.
func byteLevelDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := runeToByte[r]; ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}
