module github.com/graft-ml/graft

go 1.26

require (
	github.com/nlpodyssey/spago v1.1.0
	github.com/vmihailenco/msgpack/v5 v5.4.1
)

require (
	github.com/google/flatbuffers v23.5.26+incompatible // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)
