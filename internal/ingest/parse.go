// Package ingest turns what producers send into normalized records for the
// log: it parses, validates and normalizes events, whatever the transport.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/herald-gw/herald"
)

// Limits of one ingest request. Zero fields take their defaults.
//
// The per-event bounds exist because the work an event causes downstream
// grows with what it carries: every subscription's filter looks up each
// of its triggers, and the channels dialect walks its metrics per
// subscription and per conflation period, on the hub's one goroutine
// that serves every org of the node.
type Limits struct {
	MaxEvents      int // events per request; default 1000
	MaxStringBytes int // per well-known string field; default 1024
	// MaxTriggers bounds an event's policyAlertTriggers; default 64. An
	// alert names the few activities that raised it (MOTION_HUMAN,
	// FACE_IDENTIFIED…), and 64 is more than Rhombus alerts carry.
	MaxTriggers int
	// MaxMetrics bounds the members of an event's "telemetry" object, and
	// of its "metrics" object (the system channel's); default 256, room
	// for a gateway reporting for many sensors in one event.
	MaxMetrics int
	// MaxNameBytes bounds each trigger and each metric name, decoded;
	// default 256, the longest value a subscription filter may hold.
	MaxNameBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxEvents <= 0 {
		l.MaxEvents = 1000
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = 1024
	}
	if l.MaxTriggers <= 0 {
		l.MaxTriggers = 64
	}
	if l.MaxMetrics <= 0 {
		l.MaxMetrics = 256
	}
	if l.MaxNameBytes <= 0 {
		l.MaxNameBytes = 256
	}
	return l
}

// Parse reads one canonical event, a JSON array of them, or NDJSON, and
// returns them normalized for org: every event is validated before any is
// returned, so a batch is taken whole or not at all. nowMs is the receive
// time, the default timestampMs. Errors are *herald.Error with Index and
// Field naming the offending event and field.
func Parse(body []byte, org string, nowMs int64, limits Limits) ([]herald.Record, error) {
	limits = limits.withDefaults()
	if records, ok := fastParse(body, org, nowMs, limits); ok {
		return records, nil
	}
	return parseStd(body, org, nowMs, limits)
}

// parseStd is Parse on encoding/json: the reference for what is accepted,
// how it is normalized and how every error reads. fastParse handles the
// common bodies faster and defers to it for everything else.
func parseStd(body []byte, org string, nowMs int64, limits Limits) ([]herald.Record, error) {
	raws, err := split(body, limits.MaxEvents)
	if err != nil {
		return nil, err
	}
	records := make([]herald.Record, len(raws))
	for i, raw := range raws {
		rec, err := normalize(raw, org, nowMs, limits)
		if err != nil {
			err.Index = i
			return nil, err
		}
		records[i] = rec
	}
	return records, nil
}

// split separates the request body into raw JSON values.
func split(body []byte, maxEvents int) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, herald.Errorf(herald.EINVALID, "empty body: send an event object, an array of them, or NDJSON")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var raws []json.RawMessage
	add := func(raw json.RawMessage) error {
		if len(raws) == maxEvents {
			return herald.Errorf(herald.ETOOLARGE, "too many events in one request: at most %d", maxEvents)
		}
		raws = append(raws, raw)
		return nil
	}
	if trimmed[0] == '[' {
		if _, err := dec.Token(); err != nil {
			return nil, syntaxError(err, 0)
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, syntaxError(err, len(raws))
			}
			if err := add(raw); err != nil {
				return nil, err
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, syntaxError(err, len(raws))
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, herald.Errorf(herald.EINVALID, "unexpected data after the JSON array")
		}
		if len(raws) == 0 {
			return nil, herald.Errorf(herald.EINVALID, "empty array: no events to store")
		}
		return raws, nil
	}
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return raws, nil
		}
		if err != nil {
			return nil, syntaxError(err, len(raws))
		}
		if err := add(raw); err != nil {
			return nil, err
		}
	}
}

func syntaxError(err error, index int) *herald.Error {
	e := herald.Errorf(herald.EINVALID, "malformed JSON: %v", err)
	e.Index = index
	return e
}

// stringFields must be JSON strings when present.
var stringFields = []string{"entity", "entityUuid", "type", "deviceUuid", "channel", "key",
	"textDescription", "severity", "title", "message", "status", "oldStatus", "reason"}

func normalize(raw json.RawMessage, org string, nowMs int64, limits Limits) (herald.Record, *herald.Error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return herald.Record{}, fieldError("", "each event must be a JSON object")
	}
	if err := checkText(raw); err != nil {
		return herald.Record{}, err
	}
	if err := checkStructure(raw); err != nil {
		return herald.Record{}, err
	}
	for name, v := range fields {
		if string(v) == "null" {
			delete(fields, name) // null means absent
		}
	}
	if _, ok := fields["id"]; ok {
		return herald.Record{}, fieldError("id", "is assigned by herald; leave it out")
	}
	str := make(map[string]string, len(stringFields))
	for _, name := range stringFields {
		v, ok := fields[name]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return herald.Record{}, fieldError(name, "must be a string")
		}
		if len(s) > limits.MaxStringBytes {
			return herald.Record{}, fieldError(name, "is longer than "+strconv.Itoa(limits.MaxStringBytes)+" bytes")
		}
		str[name] = s
	}
	if str["entity"] == "" {
		return herald.Record{}, fieldError("entity", "is required (e.g. \"POLICY_ALERT\")")
	}
	if v, ok := fields["org"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil || !strings.EqualFold(s, org) {
			return herald.Record{}, fieldError("org", "must be left out or equal to the API key's org")
		}
	}
	channel := str["channel"]
	if channel == "" {
		channel = herald.ChannelForEntity(str["entity"])
	} else if !herald.ValidChannel(channel) {
		return herald.Record{}, fieldError("channel", "must be one of alerts, telemetry, devices, system, events")
	}
	if err := checkShapes(fields, limits); err != nil {
		return herald.Record{}, err
	}
	if _, ok := fields["timestampMs"]; !ok {
		fields["timestampMs"] = json.RawMessage(strconv.FormatInt(nowMs, 10))
	}
	fields["org"], _ = json.Marshal(org)
	fields["channel"], _ = json.Marshal(channel)
	data, err := json.Marshal(fields)
	if err != nil {
		return herald.Record{}, fieldError("", "cannot be encoded: "+err.Error())
	}
	return herald.Record{
		Org: org, Channel: channel, Entity: str["entity"], DeviceUUID: str["deviceUuid"],
		EntityUUID: str["entityUuid"], Key: str["key"], Data: data,
	}, nil
}

// checkShapes validates the well-known non-string fields, and bounds the
// lists that per-event work downstream grows with.
func checkShapes(fields map[string]json.RawMessage, limits Limits) *herald.Error {
	if v, ok := fields["timestampMs"]; ok {
		if n, err := strconv.ParseInt(string(v), 10, 64); err != nil || n < 0 {
			return fieldError("timestampMs", "must be a non-negative integer (Unix milliseconds)")
		}
	}
	if v, ok := fields["durationSec"]; ok {
		var f float64
		if json.Unmarshal(v, &f) != nil {
			return fieldError("durationSec", "must be a number")
		}
	}
	if v, ok := fields["policyAlertTriggers"]; ok {
		var list []string
		if json.Unmarshal(v, &list) != nil {
			return fieldError("policyAlertTriggers", "must be an array of strings")
		}
	}
	if err := checkTriggers(fields, limits); err != nil {
		return err
	}
	for _, name := range []string{"telemetry", "metadata"} {
		if v, ok := fields[name]; ok {
			var m map[string]json.RawMessage
			if json.Unmarshal(v, &m) != nil {
				return fieldError(name, "must be a JSON object")
			}
		}
	}
	for _, name := range []string{"telemetry", "metrics"} {
		if v, ok := fields[name]; ok && v[0] == '{' { // "metrics" of another type is no metrics
			if err := checkMetrics(name, v, limits); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkTriggers bounds policyAlertTriggers, the array every
// subscription's filter looks up each item of.
func checkTriggers(fields map[string]json.RawMessage, limits Limits) *herald.Error {
	const name = "policyAlertTriggers"
	var items []json.RawMessage
	if raw, ok := fields[name]; !ok || json.Unmarshal(raw, &items) != nil {
		return nil // absent, or refused by checkShapes
	}
	if len(items) > limits.MaxTriggers {
		return fieldError(name, "has "+strconv.Itoa(len(items))+" triggers; at most "+
			strconv.Itoa(limits.MaxTriggers)+" are allowed")
	}
	for i, item := range items {
		var t string
		if json.Unmarshal(item, &t) == nil && len(t) > limits.MaxNameBytes {
			return fieldError(name, "item "+strconv.Itoa(i)+" (counting from 0) is "+
				strconv.Itoa(len(t))+" bytes long; at most "+strconv.Itoa(limits.MaxNameBytes)+" are allowed")
		}
	}
	return nil
}

// checkMetrics bounds the members of the object raw, repeated names
// included: they are stored as sent, and each costs work downstream.
func checkMetrics(field string, raw json.RawMessage, limits Limits) *herald.Error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return fieldError(field, "must be a JSON object")
	}
	for n := 0; dec.More(); n++ {
		tok, err := dec.Token()
		name, _ := tok.(string)
		if err != nil {
			return fieldError(field, "must be a JSON object")
		}
		if n == limits.MaxMetrics {
			// Count the rest, for a message that says how far over it is.
			count := n + 1
			for dec.Decode(&json.RawMessage{}) == nil && dec.More() {
				if _, err := dec.Token(); err != nil {
					break
				}
				count++
			}
			return fieldError(field, "has "+strconv.Itoa(count)+" metrics; at most "+strconv.Itoa(limits.MaxMetrics)+" are allowed")
		}
		if len(name) > limits.MaxNameBytes {
			return fieldError(field, "metric "+strconv.Itoa(n)+" (counting from 0) has a name of "+strconv.Itoa(len(name))+
				" bytes ("+herald.QuoteStart(name)+"); at most "+strconv.Itoa(limits.MaxNameBytes)+" are allowed")
		}
		if err := dec.Decode(&json.RawMessage{}); err != nil {
			return fieldError(field, "must be a JSON object")
		}
	}
	return nil
}

func fieldError(field, message string) *herald.Error {
	return &herald.Error{Code: herald.EINVALID, Field: field, Message: message, Index: -1}
}
