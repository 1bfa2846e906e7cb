package marker

import (
	"testing"
)

func TestRoundTrip(t *testing.T) {
	tests := []Mark{
		{0, 0, 0},
		{1, 2, 3},
		{1<<32 - 1, 1<<64 - 1, 1<<63 - 1},
		{42, 7, 1732770000123456789},
	}
	for _, tt := range tests {
		frame := []byte(`{"type":"event","data":{"data":{"load":"` + tt.String() + `"}}}`)
		got, ok := Find(frame)
		if !ok || got != tt {
			t.Errorf("Find(%s) = %+v %v, want %+v", frame, got, ok, tt)
		}
	}
}

func TestFind(t *testing.T) {
	tests := []struct {
		give   string
		want   Mark
		wantOK bool
	}{
		{`nothing here`, Mark{}, false},
		{`"hbl1:"`, Mark{}, false},
		{`"hbl1:1:2"`, Mark{}, false},
		{`"hbl1:x:2:3"`, Mark{}, false},
		{`"hbl1:99999999999:2:3"`, Mark{}, false}, // node beyond u32
		{`"hbl1:1:2:99999999999999999999"`, Mark{}, false},
		{`hbl1:bad hbl1:4:5:6`, Mark{4, 5, 6}, true},
		{`{\"load\":\"hbl1:7:8:9\"}`, Mark{7, 8, 9}, true}, // inside an escaped JSON string
	}
	for _, tt := range tests {
		got, ok := Find([]byte(tt.give))
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("Find(%s) = %+v %v, want %+v %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

func BenchmarkFind(b *testing.B) {
	frame := []byte(`{"type":"event","seq":123456,"data":{"event_id":"abcdefghijklmnop","node_id":1234567890123,"node_id_str":"1234567890123","node_name":"load-0001","pot_id":"cowrie-1","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2025-11-28T04:30:00Z","received_at":"2025-11-28T04:30:00.123456Z","src_ip":"203.0.113.7","data":{"dst_ip":"10.0.0.5","dst_port":22,"load":"` + Mark{17, 123456, 1732770000123456789}.String() + `","message":"login attempt [root/123456] failed","password":"123456"}}}`)
	for b.Loop() {
		if _, ok := Find(frame); !ok {
			b.Fatal("not found")
		}
	}
}
