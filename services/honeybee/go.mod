module github.com/honeybee/core/services/honeybee

go 1.26

require github.com/honeybee/core/proto v0.0.0
require github.com/honeybee/core/services/node-gateway v0.0.0
require github.com/honeybee/core/services/api v0.0.0
require github.com/honeybee/core/services/ws-proxy v0.0.0

replace github.com/honeybee/core/proto => ../../proto
replace github.com/honeybee/core/services/node-gateway => ../node-gateway
replace github.com/honeybee/core/services/api => ../api
replace github.com/honeybee/core/services/ws-proxy => ../ws-proxy
