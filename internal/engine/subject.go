package engine

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/herald-gw/herald"
)

// An event's subject is ev.{org}.{channel}.{entity}.{device}.{entityUuid}:
// the org token makes tenancy a subject filter, and the whole subject is
// the key under which STATE keeps the newest event.

// eventSubject returns the subject a record is stored under.
func eventSubject(r *herald.Record) string {
	var b strings.Builder
	b.Grow(8 + len(r.Org) + len(r.Channel) + len(r.Entity) + len(r.DeviceUUID) + len(r.EntityUUID))
	b.WriteString("ev.")
	b.WriteString(token(r.Org))
	for _, field := range [...]string{r.Channel, r.Entity, r.DeviceUUID, r.EntityUUID} {
		b.WriteByte('.')
		b.WriteString(token(field))
	}
	return b.String()
}

// orgFilter matches every event of org.
func orgFilter(org string) string { return "ev." + org + ".>" }

// stateFilter matches the events of org whose fields equal q's non-empty
// ones (compared as subject tokens).
func stateFilter(org string, q herald.StateQuery) string {
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

// token turns a field into a valid subject token, deterministically: ""
// becomes "_", and so does every character a token cannot hold (the
// separator, the wildcards, whitespace, control and other non-printable
// characters, invalid UTF-8). Values that differ only in those characters
// share a token; org is exempt (see checkOrg), so this never crosses tenants.
func token(s string) string {
	if s == "" {
		return "_"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= utf8.RuneSelf || c == '.' || c == '*' || c == '>' || c == 0x7f {
			return sanitize(s)
		}
	}
	return s
}

func sanitize(s string) string {
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
