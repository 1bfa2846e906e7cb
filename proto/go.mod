module github.com/honeybee/core/proto

go 1.26
