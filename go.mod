module github.com/hangarmesh/hangar

go 1.26
