package engine

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-gw/herald"
)

func TestDefaults(t *testing.T) {
	cfg, err := Config{DataDir: "x"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sync != SyncInterval || cfg.SyncInterval != 2*time.Minute || cfg.DedupeWindow != 2*time.Minute ||
		cfg.MaxBatch != 1000 || cfg.Replicas != 1 || cfg.Logger == nil {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = Config{DataDir: "x", MaxAge: time.Minute}.withDefaults()
	if err != nil || cfg.DedupeWindow != time.Minute {
		t.Errorf("dedupe window with a 1m MaxAge: %v, %v", cfg.DedupeWindow, err)
	}
}

func TestSourceSequence(t *testing.T) {
	for header, want := range map[string]uint64{
		"EVENTS 42 > > ev.a.b.c.d.e": 42,
		"EVENTS:ab12 7":              7,
		"":                           0,
		"EVENTS x":                   0,
	} {
		if got, _ := sourceSequence(header); got != want {
			t.Errorf("sourceSequence(%q) = %d, want %d", header, got, want)
		}
	}
}

// TestBatchFailsWhole makes the server reject batches after it staged
// some of their messages: nothing of them may be stored.
func TestBatchFailsWhole(t *testing.T) {
	e, err := Open(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	newMsgs := func() []*nats.Msg {
		msgs := make([]*nats.Msg, 3)
		for i := range msgs {
			msgs[i] = &nats.Msg{Subject: "ev.org-a.alerts.X._._", Data: []byte(`{"org":"org-a"}`), Header: nats.Header{}}
		}
		return msgs
	}

	// A header the server refuses inside a batch, on the middle message.
	msgs := newMsgs()
	msgs[1].Header.Set("Nats-Expected-Last-Msg-Id", "x")
	_, err = e.publishBatch(t.Context(), msgs)
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		t.Fatalf("batch with a refused header: %v, want an API error", err)
	}
	if code := herald.ErrorCode(engineError("append", err)); code != herald.EINTERNAL {
		t.Errorf("refused header maps to %q", code)
	}

	// A message lost on the way: the commit finds a gap.
	msgs = newMsgs()
	for i, m := range msgs {
		m.Header.Set(headerBatchID, "lost-one")
		m.Header.Set(headerBatchSeq, []string{"1", "2", "3"}[i])
	}
	msgs[2].Header.Set(headerBatchCommit, "1")
	if err := e.conn.PublishMsg(msgs[0]); err != nil {
		t.Fatal(err)
	}
	resp, err := e.conn.RequestMsg(msgs[2], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var ack batchAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil || ack.Error == nil {
		t.Fatalf("commit after a gap answered %s", resp.Data)
	}

	if id, err := e.LastID(t.Context()); err != nil || id != 0 {
		t.Fatalf("failed batches stored something: LastID %d, %v", id, err)
	}
	ids, err := e.publishBatch(t.Context(), newMsgs())
	if err != nil || ids[0] != 1 || ids[2] != 3 {
		t.Fatalf("a good batch after failed ones: %v, %v", ids, err)
	}
}

// TestReplayCleansUp checks that readers do not leave consumers behind.
func TestReplayCleansUp(t *testing.T) {
	e, err := Open(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	record := herald.Record{Org: "org-a", Data: []byte(`{"org":"org-a"}`)}
	if _, err := e.Append(t.Context(), []herald.Record{record, record}); err != nil {
		t.Fatal(err)
	}
	before, err := e.events.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.Replay(t.Context(), "org-a", 0, 0, func(*herald.Event) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	seen := make(chan struct{}, 2)
	done := make(chan error, 1)
	go func() { done <- e.Follow(ctx, 0, func(*herald.Event) { seen <- struct{}{} }) }()
	<-seen
	<-seen
	cancel()
	<-done
	info, err := e.events.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != before.State.Consumers {
		t.Fatalf("EVENTS has %d consumers after the readers finished, %d before", info.State.Consumers, before.State.Consumers)
	}
}

// TestStateKeepsOnePerSubject checks the STATE stream the server
// accepted: sourced from EVENTS, one message per original subject.
func TestStateKeepsOnePerSubject(t *testing.T) {
	e, err := Open(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var records []herald.Record
	for i := range 12 {
		device := []string{"a", "b", "c"}[i%3]
		records = append(records, herald.Record{Org: "org-a", Channel: "devices", DeviceUUID: device, Data: []byte(`{"org":"org-a"}`)})
	}
	if _, err := e.Append(t.Context(), records); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err := e.StateLag(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("STATE still %d behind", lag)
		}
		time.Sleep(10 * time.Millisecond)
	}
	info, err := e.state.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 || info.State.NumSubjects != 3 || info.State.LastSeq != 12 {
		t.Fatalf("STATE holds %d messages on %d subjects up to %d, want 3 on 3 up to 12",
			info.State.Msgs, info.State.NumSubjects, info.State.LastSeq)
	}
}

// TestFollowOutlivesAStalledConsumer: a follower whose consumer stops
// delivering while the log grows (its NATS node died and the client saw
// no error; here, the consumer is paused) is noticed and replaced, and
// Follow goes on from the last event it passed, repeating none.
func TestFollowOutlivesAStalledConsumer(t *testing.T) {
	e, err := Open(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.followStall = 300 * time.Millisecond
	record := herald.Record{Org: "org-a", Data: []byte(`{"org":"org-a"}`)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seen := make(chan uint64, 16)
	done := make(chan error, 1)
	go func() { done <- e.Follow(ctx, 0, func(ev *herald.Event) { seen <- ev.ID }) }()
	if _, err := e.Append(t.Context(), []herald.Record{record}); err != nil {
		t.Fatal(err)
	}
	if id := <-seen; id != 1 {
		t.Fatalf("first %d", id)
	}
	for names := e.events.ListConsumers(t.Context()).Info(); ; {
		info, ok := <-names
		if !ok {
			break
		}
		if _, err := e.js.PauseConsumer(t.Context(), eventsStream, info.Name, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Append(t.Context(), []herald.Record{record, record, record}); err != nil {
		t.Fatal(err)
	}
	for want := uint64(2); want <= 4; want++ {
		select {
		case id := <-seen:
			if id != want {
				t.Fatalf("got %d, want %d", id, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("event %d never came after the consumer stalled", want)
		case err := <-done:
			t.Fatalf("Follow ended: %v", err)
		}
	}
}
