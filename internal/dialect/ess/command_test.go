package ess

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	all := []string{"*"}
	tests := []struct {
		name, in string
		want     Command
	}{
		{"new session", `{"command":"startSession","commandId":1,"sessionId":"","eventId":""}`,
			Command{Name: CommandStartSession, CommandID: 1}},
		{"resume", `{"command":"startSession","commandId":2,"sessionId":"5c1e","eventId":"42"}`,
			Command{Name: CommandStartSession, CommandID: 2, SessionID: "5c1e", EventID: "42"}},
		{"the Go client's extra fields", `{"command":"getState","commandId":4,"sessionId":"","eventId":"","filters":null}`,
			Command{Name: CommandGetState, CommandID: 4}},
		{"the JavaScript sample", `{"command":"addSubscription","commandId":0,"subscriptionId":"","filters":[{"modifier":"Include","resourceTypes":["cameras"],"sourceIds":["*"],"eventTypes":["6EB95DD6-7CCC-4BCE-99F8-AF0D0B582D77"]}]}`,
			Command{Name: CommandAddSubscription, Filters: []FilterSpec{{ResourceTypes: []string{"cameras"}, SourceIDs: all, EventTypes: []string{"6EB95DD6-7CCC-4BCE-99F8-AF0D0B582D77"}}}, HasFilters: true}},
		{"absent and null lists are *, an empty one stays empty", `{"command":"addSubscription","commandId":3,"filters":[{"modifier":"EXCLUDE","sourceIds":null,"eventTypes":[]}]}`,
			Command{Name: CommandAddSubscription, CommandID: 3, Filters: []FilterSpec{{Exclude: true, ResourceTypes: all, SourceIDs: all, EventTypes: []string{}}}, HasFilters: true}},
		{"no modifier is include", `{"command":"addSubscription","commandId":3,"filters":[{}]}`,
			Command{Name: CommandAddSubscription, CommandID: 3, Filters: []FilterSpec{{ResourceTypes: all, SourceIDs: all, EventTypes: all}}, HasFilters: true}},
		{"no filters", `{"command":"addSubscription","commandId":5,"filters":null}`,
			Command{Name: CommandAddSubscription, CommandID: 5}},
		{"alias subscribe", `{"command":"subscribe","commandId":6,"filters":[]}`,
			Command{Name: CommandAddSubscription, CommandID: 6, Filters: []FilterSpec{}, HasFilters: true}},
		{"alias deleteSubscription", `{"command":"deleteSubscription","commandId":7,"subscriptionId":"a7f"}`,
			Command{Name: CommandRemoveSubscription, CommandID: 7, SubscriptionID: "a7f"}},
		{"alias unsubscribe", `{"command":"unsubscribe","commandId":8,"subscriptionId":"a7f"}`,
			Command{Name: CommandRemoveSubscription, CommandID: 8, SubscriptionID: "a7f"}},
		{"authenticate", `{"command":"authenticate","commandId":0,"token":"Bearer abc"}`,
			Command{Name: CommandAuthenticate, Token: "Bearer abc"}},
		{"unknown command", `{"command":"fly","commandId":9}`, Command{Unknown: "fly", CommandID: 9}},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.in))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	tests := []struct{ in, want string }{
		{`not json`, "not JSON"},
		{`[1]`, "JSON object"},
		{`null`, "JSON object"},
		{`{"commandId":1}`, `no "command"`},
		{`{"command":"getState"}`, `no "commandId"`},
		{`{"command":"getState","commandId":"1"}`, "integer"},
		{`{"command":"getState","commandId":1.5}`, "integer"},
		{`{"command":7,"commandId":1}`, "command"},
		{`{"command":"startSession","commandId":1,"sessionId":5}`, "sessionId"},
		{`{"command":"addSubscription","commandId":1,"filters":{}}`, "filters"},
		{`{"command":"addSubscription","commandId":1,"filters":[7]}`, "object"},
		{`{"command":"addSubscription","commandId":1,"filters":[{"modifier":"maybe"}]}`, "modifier"},
		{`{"command":"addSubscription","commandId":1,"filters":[{"sourceIds":[1]}]}`, "sourceIds"},
		{`{"command":"addSubscription","commandId":1,"filters":[` + strings.Repeat(`{},`, MaxFiltersPerCommand) + `{}]}`, "filters"},
		{`{"command":"addSubscription","commandId":1,"filters":[{"eventTypes":["` + strings.Repeat("x", MaxEntryBytes+1) + `"]}]}`, "bytes"},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.in))
		var m *MalformedError
		if !errors.As(err, &m) || !strings.Contains(m.Reason, tt.want) {
			t.Errorf("%.80s: %v, want a *MalformedError mentioning %q", tt.in, err, tt.want)
		}
	}
}
