// Package data turns datasets into what the trainer consumes: token
// sequences with loss masks (Example) and fixed-shape batches of inputs,
// next-token targets and loss weights (Batch).
//
// The usual path is
//
//	examples, err := data.Load("train.jsonl", tok, data.DefaultOptions())
//	train, eval, err := data.Split(examples, 0.1, seed)
//	loader, err := data.NewLoader(train, data.LoaderOptions{Batch: 8, SeqLen: 256, Pack: true, Shuffle: true})
//	for step := range steps {
//		batch := loader.Next(rng)
//		...
//	}
//
// JSONL records come in four shapes ({"text"}, {"prompt","completion"},
// {"messages"} rendered with a chat template, and Alpaca's
// {"instruction","input","output"}); Tokenize decides which tokens are
// targets for each. Plain .txt files are cut into paragraphs (ReadText).
// The Loader pads or packs examples into batches, reshuffles every epoch,
// and saves its position as a LoaderState so a checkpoint resumes with
// identical batches. Everything here builds for native, GOOS=js and
// GOOS=wasip1; only Load and ReadJSONLFile touch the file system.
package data
