module github.com/nanobreaker/nanobreaker/ffi/go

go 1.19
