package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// printSink prints events for people (text, in the shape of the seed's
// printer) or for pipes (json: one object per line, the canonical event
// with the device's name added as deviceName).
type printSink struct {
	w    io.Writer
	json bool
}

func (p *printSink) name() string { return "printer" }
func (p *printSink) close() error { return nil }

func (p *printSink) write(_ context.Context, batch []enriched) error {
	b := bufio.NewWriter(p.w)
	for i := range batch {
		if p.json {
			b.Write(withDeviceName(&batch[i]))
			b.WriteByte('\n')
		} else {
			writeText(b, &batch[i])
		}
	}
	return b.Flush()
}

// writeText prints an event as seed 000's printer does, with the device's
// name as seed 001's alert display adds it:
//
//	[14:03:07] CREATE POLICY_ALERT camera=Lobby Camera
//	  triggers: MOTION_HUMAN
//	  Person detected near entrance
//	  uuid: alert-1  id: 42
func writeText(b *bufio.Writer, e *enriched) {
	b.WriteString("[" + time.UnixMilli(e.TimestampMs).Format("15:04:05") + "] ")
	switch {
	case e.Entity != "" && e.Type != "":
		b.WriteString(e.Type + " " + e.Entity)
	case e.Entity != "":
		b.WriteString(e.Entity)
	default:
		b.WriteString(e.Channel) // the channels dialect's pushes carry no entity or type
	}
	if e.DeviceName != "" {
		b.WriteString(" " + orDefault(e.DeviceKind, "device") + "=" + e.DeviceName)
	} else if e.DeviceUUID != "" {
		b.WriteString(" device=" + e.DeviceUUID)
	}
	b.WriteByte('\n')
	if len(e.Triggers) > 0 {
		b.WriteString("  triggers: " + strings.Join(e.Triggers, ", ") + "\n")
	}
	if e.Severity != "" {
		b.WriteString("  severity: " + e.Severity + "\n")
	}
	if e.Description != "" {
		b.WriteString("  " + e.Description + "\n")
	}
	b.WriteString("  uuid: " + orDefault(e.EntityUUID, "N/A") + "  id: " + strconv.FormatUint(e.ID, 10) + "\n\n")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// withDeviceName is the event's JSON with "deviceName" added when the
// name is known.
func withDeviceName(e *enriched) []byte {
	body := []byte(strings.TrimSpace(string(e.Body)))
	if e.DeviceName == "" || len(body) < 2 || body[0] != '{' || strings.Contains(string(body), `"deviceName"`) {
		return body
	}
	name, _ := json.Marshal(e.DeviceName)
	out := make([]byte, 0, len(body)+len(name)+16)
	out = append(out, body[:len(body)-1]...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	out = append(out, `"deviceName":`...)
	out = append(out, name...)
	return append(out, '}')
}
