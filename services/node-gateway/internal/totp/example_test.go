package totp_test

import (
	"fmt"
	"time"

	"github.com/honeybee/core/services/node-gateway/internal/totp"
)

func ExampleVerify() {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // RFC 6238 test seed
	now := time.Unix(59, 0)
	code, _ := totp.Code(secret, now)
	step, ok := totp.Verify(secret, code, now, 0)
	fmt.Println(code, step, ok)
	_, ok = totp.Verify(secret, code, now, step) // the same code again
	fmt.Println(ok)
	// Output:
	// 287082 1 true
	// false
}

func ExampleURI() {
	fmt.Println(totp.URI("HoneyBee", "edge node 1", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"))
	// Output:
	// otpauth://totp/HoneyBee:edge%20node%201?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=HoneyBee&algorithm=SHA1&digits=6&period=30
}
