module github.com/honeybee/core/services/node-gateway

go 1.26

require github.com/honeybee/core/proto v0.0.0

replace github.com/honeybee/core/proto => ../../proto
