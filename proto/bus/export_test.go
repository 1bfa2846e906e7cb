package bus

// SrcIP and SrcIPSlow expose srcIP and its encoding/json form, which
// tests compare.
var (
	SrcIP     = srcIP
	SrcIPSlow = srcIPSlow
)
