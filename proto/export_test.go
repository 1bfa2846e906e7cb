package proto

// BufferSize exposes the size of the reader's buffer to tests, which check
// that it never grows past the maximum message size plus one byte.
func (r *Reader) BufferSize() int { return len(r.buf) }

// ErrInvalidRead is the error for a reader that breaks the io.Reader contract.
var ErrInvalidRead = errInvalidRead

// DecodeGeneral decodes without the fast path of scan.go.
func (d Decoder) DecodeGeneral(data []byte) (Envelope, error) { return d.decode(data, false) }

// SplitVariant and SplitVariantGeneral expose the variant splitter with and
// without its fast path.
func SplitVariant(data []byte) (string, []byte, error) { return splitVariant(data) }

func SplitVariantGeneral(data []byte) (string, []byte, error) { return splitVariantGeneral(data) }

// ScanPotEvent reports whether the fast path decodes the PotEvent payload
// itself rather than leaving it to the general path.
func ScanPotEvent(payload []byte) bool {
	_, ok, _ := scanPotEvent(payload)
	return ok
}

// MaxObjectDepth is the nesting limit of ScanObject.
const MaxObjectDepth = maxObjectDepth

// ScanPotStatusUpdate reports whether the fast path decodes the
// PotStatusUpdate payload itself.
func ScanPotStatusUpdate(payload []byte) bool {
	_, ok, _ := scanPotStatusUpdate(payload)
	return ok
}
