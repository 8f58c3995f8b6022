package stomp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// collect feeds chunks one by one, draining Next after each as a read loop
// would, and returns the frames and the first error.
func collect(p *Parser, chunks ...[]byte) ([]*Frame, error) {
	var frames []*Frame
	if len(chunks) == 0 {
		chunks = [][]byte{nil} // still drain what is queued
	}
	for _, c := range chunks {
		p.Feed(c)
		for {
			f, err := p.Next()
			if err != nil {
				return frames, err
			}
			if f == nil {
				break
			}
			frames = append(frames, f)
		}
	}
	return frames, nil
}

// bytewise splits s into one-byte chunks.
func bytewise(s []byte) [][]byte {
	chunks := make([][]byte, len(s))
	for i := range s {
		chunks[i] = s[i : i+1]
	}
	return chunks
}

// frameString renders a frame readably for failure messages.
func frameString(f *Frame) string {
	if f == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(f.Command)
	for _, h := range f.Headers {
		fmt.Fprintf(&b, " %q:%q", h.Name, h.Value)
	}
	fmt.Fprintf(&b, " body=%q", f.Body)
	return b.String()
}

func framesString(fs []*Frame) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = frameString(f)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// sameFrame compares frames treating nil and empty slices alike.
func sameFrame(a, b *Frame) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Command != b.Command || len(a.Headers) != len(b.Headers) || !bytes.Equal(a.Body, b.Body) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i] != b.Headers[i] {
			return false
		}
	}
	return true
}

func sameFrames(a, b []*Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameFrame(a[i], b[i]) {
			return false
		}
	}
	return true
}

// errString is err's text, or "" for nil, so outcomes compare with ==.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// hdrs builds a header list from name, value pairs.
func hdrs(kv ...string) []Header {
	if len(kv)%2 != 0 {
		panic("hdrs: odd argument count")
	}
	var hs []Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, Header{Name: kv[i], Value: kv[i+1]})
	}
	return hs
}

func checkFrames(t *testing.T, got, want []*Frame) {
	t.Helper()
	if !sameFrames(got, want) {
		t.Fatalf("frames:\n got  %s\n want %s", framesString(got), framesString(want))
	}
}
