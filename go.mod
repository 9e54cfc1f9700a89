module github.com/graft-ml/graft

go 1.26
