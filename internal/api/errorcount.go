package api

import (
	"sync/atomic"

	"github.com/herald-gw/herald"
)

// errorCodes are herald's error codes, the values of the errors metric's
// label: a fixed set, so that no input can grow it.
var errorCodes = []string{herald.EINVALID, herald.EUNAUTHORIZED, herald.EFORBIDDEN, herald.ENOTFOUND,
	herald.ETOOLARGE, herald.ECONFLICT, herald.EUNAVAILABLE, herald.EINTERNAL}

// errorCounts count the errors WriteError answered, by code, in the
// process (one per code of errorCodes).
var errorCounts = make([]atomic.Uint64, len(errorCodes))

func countError(code string) {
	for i, c := range errorCodes {
		if c == code {
			errorCounts[i].Add(1)
			return
		}
	}
	errorCounts[len(errorCodes)-1].Add(1) // an unknown code is a bug: internal
}

// ErrorCounts calls fn with each error code and how many HTTP errors with
// that code this process answered.
func ErrorCounts(fn func(code string, n uint64)) {
	for i, c := range errorCodes {
		fn(c, errorCounts[i].Load())
	}
}
