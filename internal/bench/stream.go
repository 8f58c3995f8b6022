package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// WebSocket opcodes the stream handles.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// defaultMaxFrame bounds one STOMP frame (and so the stream's memory).
const defaultMaxFrame = 1 << 20

// CloseError is returned by Stream.Feed when the server sent a WebSocket
// close frame.
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("server closed the WebSocket: %d %s", e.Code, e.Reason)
}

// errFrameTooLarge is returned when one STOMP frame or message exceeds
// MaxFrame.
var errFrameTooLarge = errors.New("frame too large")

// MessageScanner reads one WebSocket message of a JSON dialect and calls on
// with f, the caller's scratch frame (so that no frame escapes), for each
// frame the message holds: an event (CommandMessage), the answer that
// authenticates (CommandConnected) or subscribes (CommandReceipt), a
// refusal (CommandError), or anything else (CommandOther). Frames alias
// msg; on must not keep them. marker is the run's marker (see Marker).
type MessageScanner func(msg, marker []byte, f *Frame, on func(*Frame))

// Stream decodes what a server sends on a WebSocket: WebSocket frames,
// split anywhere across reads. Without Scan their data payloads
// concatenate into a stream of STOMP frames and heart-beats; with Scan
// each WebSocket message (a JSON dialect's unit) goes to Scan whole. It is
// a pure decoder — bytes in, frames out — keeping partial frames between
// calls. The zero value reads STOMP without a marker; set Marker to read
// publish times.
type Stream struct {
	Marker   []byte // the run's marker (see Marker); empty: no stamps
	MaxFrame int    // bound on one STOMP frame or message; default 1 MiB
	// Scan, if not nil, reads one WebSocket message of a JSON dialect
	// (see ScanChannels, ScanESS, ScanStreams).
	Scan MessageScanner

	header  [14]byte // a WebSocket frame header being collected
	headerN int
	remain  uint64 // payload bytes left in the current WebSocket frame
	inFrame bool   // between a complete header and the end of its payload
	opcode  byte   // of the current frame
	fin     bool   // the current frame ends its message
	got     uint64 // payload bytes of the current frame seen so far
	mask    [4]byte
	masked  bool
	maskPos int
	control []byte // payload of the current control frame
	carry   []byte // a partial STOMP frame waiting for its NUL
	frame   Frame  // handed to the callback; a field so it does not escape per frame
}

// Feed decodes b and calls on for each complete STOMP frame and each
// WebSocket ping, in order. Frames passed to on alias b or the stream's
// buffer: on must not keep them. It returns a *CloseError when the server
// closes, or an error for a protocol violation; the stream is unusable
// after an error.
func (s *Stream) Feed(b []byte, on func(*Frame)) error {
	for len(b) > 0 {
		if !s.inFrame {
			n, err := s.readHeader(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if !s.inFrame || s.remain > 0 {
				continue
			}
			// An empty payload: a control frame ends here.
			if err := s.endFrame(on); err != nil {
				return err
			}
			continue
		}
		k := uint64(len(b))
		k = min(k, s.remain)
		chunk := b[:k]
		b = b[k:]
		s.remain -= k
		whole := s.got == 0 && s.remain == 0 // the frame's payload in one piece
		s.got += k
		if s.masked {
			for i := range chunk {
				chunk[i] ^= s.mask[s.maskPos&3]
				s.maskPos++
			}
		}
		if s.opcode >= opClose {
			s.control = append(s.control, chunk...)
		} else if s.Scan != nil {
			if err := s.feedMessage(chunk, whole, on); err != nil {
				return err
			}
		} else if err := s.feedSTOMP(chunk, on); err != nil {
			return err
		}
		if s.remain == 0 {
			if err := s.endFrame(on); err != nil {
				return err
			}
		}
	}
	return nil
}

// readHeader collects header bytes from b; it returns how many it used.
// When the header is complete it sets inFrame.
func (s *Stream) readHeader(b []byte) (int, error) {
	used := 0
	need := 2
	for {
		if s.headerN >= 2 {
			need = headerLen(s.header[0], s.header[1])
		}
		if s.headerN >= need {
			break
		}
		if used == len(b) {
			return used, nil
		}
		c := copy(s.header[s.headerN:need], b[used:])
		s.headerN += c
		used += c
	}
	h := s.header[:s.headerN]
	s.headerN = 0
	if h[0]&0x70 != 0 {
		return used, errors.New("WebSocket frame with reserved bits set")
	}
	s.opcode = h[0] & 0x0f
	s.fin = h[0]&0x80 != 0
	s.got = 0
	s.masked = h[1]&0x80 != 0
	length := uint64(h[1] & 0x7f)
	rest := h[2:]
	switch length {
	case 126:
		length, rest = uint64(binary.BigEndian.Uint16(rest)), rest[2:]
	case 127:
		length, rest = binary.BigEndian.Uint64(rest), rest[8:]
	}
	if s.masked {
		copy(s.mask[:], rest)
		s.maskPos = 0
	}
	switch s.opcode {
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if length > 125 || h[0]&0x80 == 0 {
			return used, errors.New("invalid WebSocket control frame")
		}
		s.control = s.control[:0]
	default:
		return used, fmt.Errorf("unknown WebSocket opcode %#x", s.opcode)
	}
	s.remain = length
	s.inFrame = true
	return used, nil
}

// headerLen returns the length of a WebSocket frame header from its first
// two bytes.
func headerLen(b0, b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// endFrame finishes the current WebSocket frame.
func (s *Stream) endFrame(on func(*Frame)) error {
	s.inFrame = false
	switch s.opcode {
	case opClose:
		e := &CloseError{Code: 1005}
		if len(s.control) >= 2 {
			e.Code = binary.BigEndian.Uint16(s.control)
			e.Reason = string(s.control[2:])
		}
		return e
	case opPing:
		s.frame = Frame{Command: CommandPing, Raw: s.control}
		on(&s.frame)
	case opContinuation, opText, opBinary:
		if s.Scan != nil && s.got == 0 && s.fin {
			// An empty final frame: the message is what was carried.
			return s.feedMessage(nil, false, on)
		}
	}
	return nil
}

// feedMessage consumes a piece of a JSON dialect's message: it hands a
// message in one piece to Scan as it is, and carries a fragmented one
// until its final frame.
func (s *Stream) feedMessage(p []byte, whole bool, on func(*Frame)) error {
	maxFrame := s.MaxFrame
	if maxFrame <= 0 {
		maxFrame = defaultMaxFrame
	}
	if whole && s.fin && len(s.carry) == 0 {
		s.Scan(p, s.Marker, &s.frame, on)
		return nil
	}
	if len(s.carry)+len(p) > maxFrame {
		return errFrameTooLarge
	}
	s.carry = append(s.carry, p...)
	if s.fin && s.remain == 0 {
		s.Scan(s.carry, s.Marker, &s.frame, on)
		s.carry = s.carry[:0]
	}
	return nil
}

// feedSTOMP consumes a piece of the STOMP byte stream.
func (s *Stream) feedSTOMP(p []byte, on func(*Frame)) error {
	maxFrame := s.MaxFrame
	if maxFrame <= 0 {
		maxFrame = defaultMaxFrame
	}
	if len(s.carry) > 0 {
		end := bytes.IndexByte(p, 0)
		if end < 0 {
			if len(s.carry)+len(p) > maxFrame {
				return errFrameTooLarge
			}
			s.carry = append(s.carry, p...)
			return nil
		}
		s.carry = append(s.carry, p[:end+1]...)
		p = p[end+1:]
		s.frame, _, _ = ScanFrame(s.carry, s.Marker)
		on(&s.frame)
		s.carry = s.carry[:0]
	}
	for {
		p = p[skipEOL(p):]
		if len(p) == 0 {
			return nil
		}
		var n int
		var ok bool
		s.frame, n, ok = ScanFrame(p, s.Marker)
		if !ok {
			if len(p) > maxFrame {
				return errFrameTooLarge
			}
			s.carry = append(s.carry, p...)
			return nil
		}
		on(&s.frame)
		p = p[n:]
	}
}
