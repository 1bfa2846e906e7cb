module github.com/honeybee/core/deploy/healthcheck

go 1.26
