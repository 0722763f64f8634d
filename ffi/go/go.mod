module nanobreaker

go 1.19
