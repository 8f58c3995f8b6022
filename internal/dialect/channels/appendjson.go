package channels

import (
	"math"
	"strconv"
	"time"

	"github.com/herald-gw/herald/internal/jsonscan"
)

// appendKey appends `"key":` for a key that needs no escaping.
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendStringField appends `,"key":"value"`.
func appendStringField(dst []byte, key, value string) []byte {
	dst = append(dst, ',')
	dst = appendKey(dst, key)
	return jsonscan.AppendString(dst, value)
}

// appendStringList appends a JSON array of strings.
func appendStringList(dst []byte, list []string) []byte {
	dst = append(dst, '[')
	for i, s := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonscan.AppendString(dst, s)
	}
	return append(dst, ']')
}

// appendMillis appends ms, Unix milliseconds, as an ISO-8601 UTC string
// with exactly three fraction digits: "2024-01-01T12:00:00.000Z".
func appendMillis(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	return append(dst, '"')
}

// appendTime appends t in UTC with the given layout as a JSON string.
func appendTime(dst []byte, t time.Time, layout string) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, layout)
	return append(dst, '"')
}

// appendFloat appends f rounded to two decimals, or null for NaN and
// infinities, which JSON cannot hold.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	r := math.Round(f*100) / 100
	if math.IsInf(r, 0) { // f*100 overflowed
		r = f
	}
	return strconv.AppendFloat(dst, r, 'f', -1, 64)
}

// appendID appends an identifier as a JSON number when it is a decimal
// integer that JavaScript reads exactly (no sign, no leading zero, at most
// 15 digits), else as a JSON string. The Valtronics clients send and
// print numeric ids; uuids stay strings.
func appendID(dst []byte, id string) []byte {
	if numericID(id) {
		return append(dst, id...)
	}
	return jsonscan.AppendString(dst, id)
}

func numericID(id string) bool {
	if len(id) == 0 || len(id) > 15 || (id[0] == '0' && len(id) > 1) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// formatFrequency writes a frequency the way a user would: "30s", "1m",
// "500ms", "1h"; other values in time.Duration's own notation, which
// parseFrequency reads back exactly.
func formatFrequency(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return d.String()
}
