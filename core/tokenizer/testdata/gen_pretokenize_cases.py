# Generates pretokenize_cases.json: random strings and how each of the three
# lookahead patterns splits them, as computed by Python's `regex` module (a
# backtracking engine with the same semantics as the fancy-regex/Oniguruma
# engines Hugging Face tokenizers uses). The Go hand-written scanners are
# tested against this file. Run: python3 gen_pretokenize_cases.py > pretokenize_cases.json
import json, random, regex

PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}
ALPHABET = list("aZ ") * 4 + list("'sStTrRevVmlLdD019.,!?-_\t\n\r") + [
    "é", "ß", "日", "本", "😀", "٣", "½", "\u00a0", "\u3000", "\u2028", "ſ", "—", "€", "'",
]
FIXED = [
    "", " ", "  ", "Hello world", " Hello", "I'm you're we've he'll it's I'd",
    "I'M YOU'RE HE'LL", "don'tstop", "'sun", "123456789", " 12 345",
    "a  b   c    ", "line1\nline2\r\n\r\nline3", " \n \n ", "\t\tx", "x\t\t",
    "hello!!! ??", " !!!\n\nx", "café 日本 😀", "٣٤٥ ½", "a\u00a0b\u3000c",
]
random.seed(1)
cases = []
for s in FIXED + ["".join(random.choice(ALPHABET) for _ in range(random.randint(1, 24))) for _ in range(300)]:
    cases.append({"text": s, **{k: p.findall(s) for k, p in ((k, regex.compile(v)) for k, v in PATTERNS.items())}})
print(json.dumps(cases, ensure_ascii=False, separators=(",", ":")))
