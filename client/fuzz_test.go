package client

import (
	"strconv"
	"testing"
)

// FuzzDecode feeds every dialect's decoder the same bytes: none panics,
// and an event any of them yields carries the id it was decoded with.
func FuzzDecode(f *testing.F) {
	event := `{"id":"42","orgUuid":"o","entity":"POLICY_ALERT","type":"CREATE","deviceUuid":"d","timestampMs":1,"policyAlertTriggers":["MOTION_HUMAN"]}`
	for _, seed := range []string{
		"MESSAGE\nsubscription:0\nmessage-id:42\ndestination:/topic/change/o\n\n" + event + "\x00",
		"ERROR\nmessage:events lost\n\n\x00",
		"\n",
		`{"type":"alert","channel":"alerts","event_id":"42","device_id":"d","alert_id":"a","severity":"critical","timestamp":"2026-01-02T03:04:05Z"}`,
		`{"type":"error","error":"events_lost"}`,
		`{"type":"auth_failed","error":"token_revoked","message":"revoked"}`,
		`{"type":"error","error":"catch_up_failed","message":"Reading the event log failed; nothing was skipped."}`,
		`{"commandId":1,"status":200,"events":[{"id":"42","data":` + event + `}]}`,
		`{"type":"message","value":{"id":"e42","elems":` + event + `}}`,
		event, `{"id":18446744073709551616}`, `[]`, `null`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if frame, ok := parseSTOMP(string(data)); ok {
			if e, err := frame.event(); err == nil && frame.header("message-id") != strconv.FormatUint(e.ID, 10) {
				t.Fatalf("STOMP event %d from message-id %q", e.ID, frame.header("message-id"))
			}
		}
		if m, err := channelsDecode(data); err == nil {
			channelsEvent(m, data)
		}
		if _, events, err := essDecode(data); err == nil {
			for _, e := range events {
				if e.Body == nil {
					t.Fatalf("ess event %d without its body", e.ID)
				}
			}
		}
		if _, e, err := streamsDecode(data); err == nil && e != nil && e.Body == nil {
			t.Fatalf("streams event %d without its body", e.ID)
		}
		decodeCanonical(data)
	})
}
