package stomp

import (
	"math"
	"strings"
)

// NegotiateVersion picks the highest common version from an accept-version
// header value (comma list). ok=false when there is none in common. A missing
// header (present=false) means 1.0, as the 1.1 and 1.2 specs require for
// clients that predate the header. Spaces around items are tolerated; a
// present but empty header has nothing in common.
func NegotiateVersion(acceptVersion string, present bool) (v string, ok bool) {
	if !present {
		return V10, true
	}
	best := ""
	for rest := acceptVersion; ; {
		item, tail, more := strings.Cut(rest, ",")
		switch strings.TrimSpace(item) {
		case V12:
			return V12, true
		case V11:
			best = V11
		case V10:
			if best == "" {
				best = V10
			}
		}
		if !more {
			break
		}
		rest = tail
	}
	return best, best != ""
}

// ParseHeartBeat parses "cx,cy" (missing → 0,0). Error on malformed values:
// each must be a plain decimal count of milliseconds that fits in 31 bits,
// since a negative or signed value has no meaning and a huge one would
// overflow the interval arithmetic.
func ParseHeartBeat(s string) (cx, cy int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, errHeartBeat
	}
	cx, ok1 := parseMillis(a)
	cy, ok2 := parseMillis(b)
	if !ok1 || !ok2 {
		return 0, 0, errHeartBeat
	}
	return cx, cy, nil
}

func parseMillis(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > math.MaxInt32 {
			return 0, false
		}
	}
	return n, true
}
