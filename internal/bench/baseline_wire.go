package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/herald-gw/herald/internal/jsonscan"
)

// baselineWire is one dialect as the baseline server speaks it: the
// routes up to the upgrade, the answers to a client's handshake, and the
// message one event becomes, framed once for every connection.
type baselineWire interface {
	// routes registers the dialect's endpoints: its HTTP steps and its
	// WebSocket upgrade, which ends in b.serveWebSocket.
	routes(b *Baseline, mux *http.ServeMux)
	// answer replies to one message of a JSON dialect's client: reply is
	// sent (as the subscription's confirmation when subscribe is set);
	// !ok ends the connection after it.
	answer(b *Baseline, st *baselineState, req *baselineRequest) (reply string, subscribe, ok bool)
	// appendPayload appends the message herald sends for event, without
	// its WebSocket header.
	appendPayload(dst []byte, b *Baseline, id uint64, nowMs int64, event []byte) []byte
}

var baselineWires = map[string]baselineWire{
	"stomp":    stompWire{},
	"channels": channelsWire{},
	"ess":      essWire{},
	"streams":  streamsWire{},
}

// baselineRequest is what the baseline reads of a JSON dialect's client
// message (the union of the dialects' fields).
type baselineRequest struct {
	Type      string `json:"type"`    // channels, streams
	Token     string `json:"token"`   // channels auth
	Channel   string `json:"channel"` // channels subscribe
	Command   string `json:"command"` // ess
	CommandID int64  `json:"commandId"`
	MsgID     string `json:"msgId"` // streams
}

// baselineState is one connection's handshake so far.
type baselineState struct {
	authenticated bool
	subscribed    bool
}

// baselineToken is the JWT stand-in the baseline's token endpoint issues.
const baselineToken = "baseline-token"

// readJSON answers a JSON dialect's handshake and returns when the client
// leaves, with the shard it subscribed on (nil if none).
func (b *Baseline) readJSON(c *baselineConn, br io.Reader) *baselineShard {
	var shard *baselineShard
	var st baselineState
	var msg []byte
	for {
		payload, fin, ok := readClientFrame(br)
		if !ok {
			return shard
		}
		if payload == nil {
			continue // a ping or pong
		}
		if msg = append(msg, payload...); !fin {
			if len(msg) > 64<<10 {
				return shard
			}
			continue
		}
		var req baselineRequest
		if json.Unmarshal(msg, &req) != nil {
			return shard
		}
		msg = msg[:0]
		reply, subscribe, ok := b.wire.answer(b, &st, &req)
		switch {
		case subscribe && shard == nil:
			shard = b.nextShard()
			if shard.add(c, reply) != nil {
				return shard
			}
		case reply != "":
			if writeText(c.nc, reply) != nil {
				return shard
			}
		}
		if !ok {
			return shard
		}
	}
}

// stomp

func (stompWire) routes(b *Baseline, mux *http.ServeMux) {
	mux.HandleFunc("GET /websocket", func(w http.ResponseWriter, r *http.Request) {
		if b.authorized(w, r) {
			b.serveWebSocket(w, r)
		}
	})
}

// answer is not used: the STOMP baseline reads a byte stream (readLoop).
func (stompWire) answer(*Baseline, *baselineState, *baselineRequest) (string, bool, bool) {
	return "", false, false
}

// appendPayload is a MESSAGE with herald's headers.
func (stompWire) appendPayload(dst []byte, b *Baseline, id uint64, nowMs int64, event []byte) []byte {
	body := b.appendBody(nil, id, nowMs, event)
	dst = append(dst, "MESSAGE\ndestination:/topic/change/"...)
	dst = append(dst, b.org...)
	dst = append(dst, "\nmessage-id:"...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, "\ncontent-type:application/json\ncontent-length:"...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\nsubscription:"+subscriptionID+"\n\n"...)
	dst = append(dst, body...)
	return append(dst, 0)
}

// channels

func (channelsWire) routes(b *Baseline, mux *http.ServeMux) {
	mux.HandleFunc("GET /ws", b.serveWebSocket)
	mux.HandleFunc("POST /API/IDP/connect/token", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		if r.ParseForm() != nil || r.PostForm.Get("password") != b.key {
			http.Error(w, `{"error":"invalid_grant","error_description":"invalid username or password"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":3600,"token_type":"Bearer","scope":"subscribe"}`, baselineToken)
	})
}

func (channelsWire) answer(_ *Baseline, st *baselineState, req *baselineRequest) (string, bool, bool) {
	switch {
	case !st.authenticated && (req.Type != "auth" || req.Token != baselineToken):
		return `{"type":"auth_response","success":false,"error":"invalid_token","message":"the baseline takes its own token"}`, false, false
	case !st.authenticated:
		st.authenticated = true
		return `{"type":"auth_response","success":true}`, false, true
	case req.Type == "subscribe" && req.Channel == "alerts" && !st.subscribed:
		st.subscribed = true
		return `{"type":"subscribed","channel":"alerts","filters":{}}`, true, true
	}
	return `{"type":"error","error":"unknown_type","message":"the baseline takes one subscribe, to alerts"}`, false, false
}

// appendPayload is an alert push as herald renders the bench's events:
// no device, severity, title or message; the event's metadata.
func (channelsWire) appendPayload(dst []byte, _ *Baseline, id uint64, nowMs int64, event []byte) []byte {
	dst = append(dst, `{"type":"alert","channel":"alerts","event_id":"`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `","alert_id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"timestamp":"`...)
	dst = time.UnixMilli(nowMs).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, `","metadata":`...)
	if md, ok := jsonscan.Lookup(event, "metadata"); ok {
		dst = append(dst, md...)
	} else {
		dst = append(dst, "{}"...)
	}
	return append(dst, '}')
}

// ess

func (essWire) routes(b *Baseline, mux *http.ServeMux) {
	mux.HandleFunc("GET /api/ws/events/v1", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+b.key {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		b.serveWebSocket(w, r)
	})
}

func (essWire) answer(_ *Baseline, st *baselineState, req *baselineRequest) (string, bool, bool) {
	id := strconv.FormatInt(req.CommandID, 10)
	switch {
	case req.Command == "startSession" && !st.authenticated:
		st.authenticated = true
		return `{"commandId":` + id + `,"status":201,"sessionId":"baseline-session"}`, false, true
	case req.Command == "addSubscription" && st.authenticated && !st.subscribed:
		st.subscribed = true
		return `{"commandId":` + id + `,"status":200,"subscriptionId":"baseline-subscription"}`, true, true
	}
	return `{"commandId":` + id + `,"status":400,"error":{"errorText":"the baseline takes startSession, then one addSubscription"}}`, false, false
}

// essTypeGUID stands for the event type GUID herald derives from the
// entity: the same length.
const essTypeGUID = "00000000-0000-5000-8000-0000000000b0"

// appendPayload is an {"events":[…]} push of one event as herald renders
// the bench's (no device: source hardware/, no state group).
func (essWire) appendPayload(dst []byte, b *Baseline, id uint64, nowMs int64, event []byte) []byte {
	dst = append(dst, `{"events":[{"id":"`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `","time":"`...)
	dst = time.UnixMilli(nowMs).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, `","type":"`+essTypeGUID+`","source":"hardware/","datatype":`...)
	if entity, ok := jsonscan.Lookup(event, "entity"); ok {
		dst = append(dst, entity...)
	} else {
		dst = append(dst, `""`...)
	}
	dst = append(dst, `,"data":`...)
	dst = b.appendBody(dst, id, nowMs, event)
	return append(dst, `,"specversion":"1.0"}]}`...)
}

// streams

// baselineSessions numbers the streams sessions of every baseline.
var baselineSessions atomic.Int64

func (streamsWire) routes(b *Baseline, mux *http.ServeMux) {
	mux.HandleFunc("POST /session", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-Auth-Token") != b.key {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"head":{"ok":false,"status":401,"errors":["invalid token"]},"body":{}}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"head":{"ok":true,"status":201,"errors":[]},"body":{"id":"b%d"}}`, baselineSessions.Add(1))
	})
	mux.HandleFunc("GET /session/{id}/ws", b.serveWebSocket)
}

func (streamsWire) answer(_ *Baseline, st *baselineState, req *baselineRequest) (string, bool, bool) {
	msgID, _ := json.Marshal(req.MsgID)
	if req.Type == "subscribe" && !st.subscribed {
		st.subscribed = true
		return `{"head":{"msgId":` + string(msgID) + `,"ok":true,"errors":[],"messages":["Your request has been processed successfully."]},"body":{}}`, true, true
	}
	return `{"head":{"msgId":` + string(msgID) + `,"ok":false,"errors":["the baseline takes one subscribe"],"messages":[]},"body":{}}`, false, false
}

// The ids of the baseline's one stream and ingest identity: as long as
// herald's.
const (
	baselineStreamID  = "s0000000000000000000000b0"
	baselineCreatorID = "i0000000000000000000000b0"
)

// appendPayload is a push of the org's events stream as herald renders
// an event without a device.
func (streamsWire) appendPayload(dst []byte, b *Baseline, id uint64, nowMs int64, event []byte) []byte {
	dst = append(dst, `{"type":"message","resource":"`+baselineStreamID+`","value":{"id":"e`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `","streamId":"`+baselineStreamID+`","path":"/baseline/org/events","creationDate":`...)
	dst = strconv.AppendInt(dst, nowMs, 10)
	dst = append(dst, `,"generatedDate":`...)
	dst = strconv.AppendInt(dst, nowMs, 10)
	dst = append(dst, `,"creatorId":"`+baselineCreatorID+`","lastEditDate":`...)
	dst = strconv.AppendInt(dst, nowMs, 10)
	dst = append(dst, `,"lastEditorId":"`+baselineCreatorID+`","elems":`...)
	dst = b.appendBody(dst, id, nowMs, event)
	return append(dst, `,"metadata":{},"location":null,"hash":null,"tags":{}}}`...)
}
