package filter

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// smallSet is the longest list a Set scans instead of hashing: for a few
// short values strings.EqualFold, which stops at the first differing
// byte, beats folding the value and hashing it (BenchmarkSet).
const smallSet = 8

// foldBufBytes bounds the folded form a lookup builds on the stack. A
// value folds to at most three times its bytes (an invalid byte becomes
// U+FFFD), so every value of MaxValueBytes fits.
const foldBufBytes = 3 * MaxValueBytes

// Set is a list of values compiled for matching without regard to case,
// exactly as strings.EqualFold compares: a lookup costs O(len(v)),
// however many values the set holds, and allocates nothing. The zero Set
// holds nothing. A Set is read-only once built and safe for concurrent use.
type Set struct {
	n int // values the set was built from

	// At most smallSet values (that fit foldBufBytes folded) are kept as
	// given and folded; more are kept by folded form in keys. Values
	// whose folded form passes foldBufBytes go to long, scanned: only a
	// caller that skipped New's bounds can put any there.
	small  []string
	folded []string
	keys   map[string]struct{}
	long   []string
	maxKey int // the longest folded form in folded or keys, in bytes
}

// NewSet compiles values. It does not bound them: New does, and other
// callers must (each value beyond MaxValueBytes costs a comparison per
// lookup).
func NewSet(values []string) Set {
	s := Set{n: len(values)}
	folded := make([]string, len(values))
	fits := true
	for i, v := range values {
		folded[i] = foldString(v)
		fits = fits && len(folded[i]) <= foldBufBytes
	}
	if len(values) <= smallSet && fits {
		s.small, s.folded = slices.Clone(values), folded // the caller's slice may change
		for _, f := range folded {
			s.maxKey = max(s.maxKey, len(f))
		}
		return s
	}
	s.keys = make(map[string]struct{}, len(values))
	for i, k := range folded {
		if len(k) > foldBufBytes {
			s.long = append(s.long, values[i])
			continue
		}
		s.keys[k] = struct{}{}
		s.maxKey = max(s.maxKey, len(k))
	}
	return s
}

// Len returns the number of values the set was built from.
func (s *Set) Len() int { return s.n }

// Contains reports whether some value of s equals v under
// strings.EqualFold.
func (s *Set) Contains(v string) bool {
	if s.keys == nil {
		for _, item := range s.small {
			if strings.EqualFold(item, v) {
				return true
			}
		}
		return false
	}
	for _, item := range s.long {
		if strings.EqualFold(item, v) {
			return true
		}
	}
	if isFolded(v) {
		_, ok := s.keys[v] // the common case: nothing to fold, nothing to copy
		return ok
	}
	if len(v) <= shortKey {
		// Most values (uuids, trigger names) fit a buffer that is cheap to
		// clear; its folded form is no longer than v unless v holds
		// invalid UTF-8, which the general path handles.
		var buf [shortKey]byte
		if n, ok := foldShort(&buf, v); ok {
			_, found := s.keys[string(buf[:n])] // no allocation: a map index converts in place
			return found
		}
	}
	var k Key
	k.AddString(v)
	return s.ContainsKey(&k)
}

// shortKey is the size of Contains's first, small fold buffer.
const shortKey = 64

// foldShort folds v into buf when v is valid UTF-8 (so that its folded
// form is no longer than v).
func foldShort(buf *[shortKey]byte, v string) (int, bool) {
	n := 0
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			buf[n] = c
			n, i = n+1, i+1
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, false
		}
		n += utf8.EncodeRune(buf[n:], fold(r))
		i += size
	}
	return n, true
}

// Key is a value folded rune by rune, to look up in a Set with
// ContainsKey without first decoding it into a string: a JSON string's
// escapes, say. The zero Key is the empty value; Reset makes it so again,
// so one Key on the stack serves many lookups without being cleared.
type Key struct {
	n   int // bytes of buf in use; -1 once the value is too long for buf
	buf [foldBufBytes]byte
}

// Reset empties k.
func (k *Key) Reset() { k.n = 0 }

// AddRune appends r to k's value. A rune that is not valid (a surrogate,
// a negative number…) stands for U+FFFD, as it would in a string.
func (k *Key) AddRune(r rune) {
	if k.n < 0 {
		return
	}
	if 0 <= r && r < utf8.RuneSelf {
		if k.n == len(k.buf) {
			k.n = -1
			return
		}
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		k.buf[k.n] = byte(r)
		k.n++
		return
	}
	r = fold(validRune(r))
	if k.n+utf8.RuneLen(r) > len(k.buf) {
		k.n = -1
		return
	}
	k.n += utf8.EncodeRune(k.buf[k.n:], r)
}

// AddString appends the runes of v, an invalid byte standing for U+FFFD.
func (k *Key) AddString(v string) {
	for _, r := range v {
		k.AddRune(r)
	}
}

// AddBytes appends the runes of the UTF-8 text b, an invalid byte
// standing for U+FFFD. ASCII, the common case, is folded in line.
func (k *Key) AddBytes(b []byte) {
	for i := 0; i < len(b); {
		c := b[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(b[i:])
			k.AddRune(r)
			i += size
			continue
		}
		if k.n < 0 || k.n == len(k.buf) {
			k.n = -1
			return
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		k.buf[k.n] = c
		k.n++
		i++
	}
}

// ContainsKey reports whether some value of s equals k's value under
// strings.EqualFold. A Key holds a value up to 3×MaxValueBytes bytes
// folded, more than any value of MaxValueBytes; a longer one matches no
// value, so a Set built from longer values (beyond New's bounds) matches
// those only through Contains.
func (s *Set) ContainsKey(k *Key) bool {
	if k.n < 0 || k.n > s.maxKey {
		return false // longer than every value: equal to none
	}
	key := k.buf[:k.n]
	if s.keys == nil {
		for _, f := range s.folded {
			if string(key) == f { // equal folded forms: equal under EqualFold
				return true
			}
		}
		return false
	}
	_, ok := s.keys[string(key)]
	return ok
}

// fold maps r to the smallest rune of its case-folding orbit (the runes
// unicode.SimpleFold cycles through), so that two runes are equal under
// strings.EqualFold exactly when they fold to the same rune. For ASCII
// that is the upper case; 'k' and the Kelvin sign both give 'K'.
func fold(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	return least
}

// foldString returns v with every rune folded; the same string if that
// changes nothing.
func foldString(v string) string {
	if isFolded(v) {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for _, r := range v {
		b.WriteRune(fold(r))
	}
	return b.String()
}

// isFolded reports whether v is ASCII with no lower-case letter: its own
// folded form.
func isFolded(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= utf8.RuneSelf || 'a' <= c && c <= 'z' {
			return false
		}
	}
	return true
}

// validRune returns r, or U+FFFD if r is no valid rune (a surrogate, a
// negative number…): how a string holding it would decode.
func validRune(r rune) rune {
	if !utf8.ValidRune(r) {
		return utf8.RuneError
	}
	return r
}
