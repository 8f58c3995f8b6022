package engine

import (
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/herald-gw/herald"
)

// An event's subject is ev.{org}.{channel}.{entity}.{device}.{entityUuid}:
// the org token makes tenancy a subject filter, and the whole subject is
// the key under which STATE keeps the newest event, so each field maps to
// its token one to one (see token).

// eventSubject returns the subject a record is stored under. The org is
// written as it is, like orgFilter does: checkOrg has made sure that it
// is a token of its own.
func eventSubject(r *herald.Record) string {
	var b strings.Builder
	b.Grow(8 + len(r.Org) + len(r.Channel) + len(r.Entity) + len(r.DeviceUUID) + len(r.EntityUUID))
	b.WriteString("ev.")
	b.WriteString(r.Org)
	for _, field := range [...]string{r.Channel, r.Entity, r.DeviceUUID, r.EntityUUID} {
		b.WriteByte('.')
		b.WriteString(token(field))
	}
	return b.String()
}

// maxSubjectBytes bounds an event's subject. The server's control line
// (default max_control_line 4096) holds the subject, the reply subject
// and the sizes; one that is too long makes the server close the
// connection, which every Append of the node shares. Encoded tokens are
// a third longer than their fields, so a few long odd ids reach it.
const maxSubjectBytes = 3584

// orgFilter matches every event of org.
func orgFilter(org string) string { return "ev." + org + ".>" }

// stateFilter matches the events of org whose fields equal q's non-empty
// ones. The tokens are injective, so equal tokens mean equal fields.
func stateFilter(org string, q herald.StateQuery) string { return filterWith(org, q, token) }

// legacyStateFilter is stateFilter with the tokens versions before the
// injective encoding wrote (see legacyToken). It equals stateFilter when
// every queried field is a safe token.
func legacyStateFilter(org string, q herald.StateQuery) string {
	return filterWith(org, q, legacyToken)
}

func filterWith(org string, q herald.StateQuery, token func(string) string) string {
	var b strings.Builder
	b.WriteString("ev.")
	b.WriteString(org)
	for _, field := range [...]string{q.Channel, q.Entity, q.DeviceUUID, q.EntityUUID} {
		b.WriteByte('.')
		if field == "" {
			b.WriteByte('*')
		} else {
			b.WriteString(token(field))
		}
	}
	return b.String()
}

// tokenMarker begins every encoded token. A field that begins with it is
// encoded itself, so that no raw token can ever look like an encoded one.
const tokenMarker = '~'

// token turns a field into a subject token without losing anything, so
// that two different ids never share a subject (STATE keeps one event
// per subject, and Latest answers by subject):
//
//   - "" becomes "_", as it always did;
//   - a safe field (printable ASCII without the separator, the wildcards,
//     tokenMarker in first place, and not "_" itself) is its own token, so
//     that the subjects of usual ids (uuids, names) are what they always
//     were;
//   - anything else is tokenMarker followed by the field in unpadded
//     base64url, whose alphabet is safe.
//
// The three forms cannot meet: only "" gives "_", only encoded fields
// begin with tokenMarker. Org is exempt (see checkOrg).
func token(s string) string {
	if s == "" {
		return "_"
	}
	if safeToken(s) {
		return s
	}
	b := make([]byte, 1+base64.RawURLEncoding.EncodedLen(len(s)))
	b[0] = tokenMarker
	base64.RawURLEncoding.Encode(b[1:], []byte(s))
	return string(b)
}

func safeToken(s string) bool {
	if s == "_" || s[0] == tokenMarker {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

// legacyToken is how versions before the injective encoding made tokens:
// "" and every character a token cannot hold became "_", so ids that
// differ only in those characters shared a subject. Events stored then
// keep those subjects; Latest looks them up with it (see Latest), and
// Replay finds them by org anyway. Never use it to write.
func legacyToken(s string) string {
	if s == "" {
		return "_"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= utf8.RuneSelf || c == '.' || c == '*' || c == '>' || c == 0x7f {
			return legacySanitize(s)
		}
	}
	return s
}

func legacySanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if r == '.' || r == '*' || r == '>' || r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// checkOrg accepts only orgs that are their own subject token and a valid
// KV key token, so that no two orgs can ever share a subject or a key.
// Upstream validation makes orgs uuids; this is the engine's own guard.
func checkOrg(org string) error {
	if org == "" {
		return herald.Errorf(herald.EINVALID, "engine: empty org")
	}
	for i := 0; i < len(org); i++ {
		c := org[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return herald.Errorf(herald.EINVALID, "engine: org %q may hold only letters, digits, '-' and '_'", org)
		}
	}
	return nil
}
