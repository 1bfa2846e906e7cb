module github.com/honeybee/core/scripts/load

go 1.26

require (
	github.com/honeybee/core/proto v0.0.0
	go.uber.org/goleak v1.3.0
)

replace github.com/honeybee/core/proto => ../../proto
