package stomp

import "testing"

func TestNegotiateVersion(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		present bool
		want    string
		ok      bool
	}{
		{name: "missing header means 1.0", present: false, want: V10, ok: true},
		{name: "stompjs list", header: "1.2,1.1,1.0", present: true, want: V12, ok: true},
		{name: "Rhombus client", header: "1.2", present: true, want: V12, ok: true},
		{name: "order does not matter", header: "1.0,1.1", present: true, want: V11, ok: true},
		{name: "unknown versions skipped", header: "2.0,1.1,0.9", present: true, want: V11, ok: true},
		{name: "spaces tolerated", header: " 1.0 , 1.1 ", present: true, want: V11, ok: true},
		{name: "1.0 only", header: "1.0", present: true, want: V10, ok: true},
		{name: "none in common", header: "2.0,3.0", present: true, ok: false},
		{name: "present but empty", header: "", present: true, ok: false},
		{name: "near miss", header: "1.20,v1.2", present: true, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NegotiateVersion(tt.header, tt.present)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("NegotiateVersion(%q, %v) = %q, %v; want %q, %v", tt.header, tt.present, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseHeartBeat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		cx, cy  int
		wantErr bool
	}{
		{name: "missing", in: "", cx: 0, cy: 0},
		{name: "stompjs default", in: "10000,10000", cx: 10000, cy: 10000},
		{name: "asymmetric", in: "0,5000", cx: 0, cy: 5000},
		{name: "largest", in: "2147483647,0", cx: 2147483647, cy: 0},
		{name: "overflow", in: "2147483648,0", wantErr: true},
		{name: "one value", in: "10000", wantErr: true},
		{name: "three values", in: "1,2,3", wantErr: true},
		{name: "negative", in: "-1,0", wantErr: true},
		{name: "signed", in: "+1,0", wantErr: true},
		{name: "empty half", in: "1,", wantErr: true},
		{name: "spaces", in: "1, 2", wantErr: true},
		{name: "letters", in: "a,b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cx, cy, err := ParseHeartBeat(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseHeartBeat(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && (cx != tt.cx || cy != tt.cy) {
				t.Fatalf("ParseHeartBeat(%q) = %d, %d; want %d, %d", tt.in, cx, cy, tt.cx, tt.cy)
			}
		})
	}
}
