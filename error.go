package herald

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Error codes. Each transport maps them to its own shape in one table
// (HTTP status, STOMP ERROR, JSON error message).
const (
	EINVALID      = "invalid"      // the input is malformed or breaks a rule
	EUNAUTHORIZED = "unauthorized" // no credential, or a bad one
	EFORBIDDEN    = "forbidden"    // a valid credential without the right
	ENOTFOUND     = "not_found"    // the named thing does not exist (for this principal)
	ETOOLARGE     = "too_large"    // a size or count limit was exceeded
	ECONFLICT     = "conflict"     // the request contradicts stored state
	EUNAVAILABLE  = "unavailable"  // the engine cannot take the request now
	EINTERNAL     = "internal"     // a bug or an unexpected failure
)

// Error is an error with a code that transports understand. Field, when
// set, names the offending input (a JSON field, a header); Index, when
// not negative, names the offending item of a batch.
type Error struct {
	Code    string
	Message string
	Field   string
	Index   int
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Index: -1}
}

// ErrorCode returns the code of err, EINTERNAL for errors that carry none
// and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human text of err; internal errors are not
// shown to clients in detail.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}

// QuoteStart quotes v, or enough of its start to recognise it, for error
// messages about long input.
func QuoteStart(v string) string {
	const n = 16
	if len(v) <= n {
		return strconv.Quote(v)
	}
	i := n
	for i > 0 && !utf8.RuneStart(v[i]) {
		i--
	}
	return strconv.Quote(v[:i]) + "…"
}
