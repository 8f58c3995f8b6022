package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/herald-gw/herald/client"
	"github.com/herald-gw/herald/internal/server"
)

// ExampleDial follows one org's alerts from a herald server. It runs
// against a server of its own (exampleServer), with the org and API key
// of the tests.
func ExampleDial() {
	url, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	s, err := client.Dial(ctx, url, client.WithAPIKey("acme-key-1"),
		client.WithFilter(client.Filter{Channels: []string{"alerts"}}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	publish(url, `{"entity":"DEVICE_STATUS","deviceUuid":"camera-1","status":"online"}`)
	publish(url, `{"entity":"POLICY_ALERT","type":"CREATE","deviceUuid":"camera-1","policyAlertTriggers":["MOTION_HUMAN"],"textDescription":"Person detected"}`)

	e, err := s.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.ID, e.Entity, e.DeviceUUID, e.Triggers, e.Description)
	s.Ack(e.ID) // processed: Acked is what to store, for After at the next start
	fmt.Println("acked", s.Acked())
	// Output:
	// 2 POLICY_ALERT camera-1 [MOTION_HUMAN] Person detected
	// acked 2
}

// ExampleAfter resumes after a stored cursor, in the ess dialect: the
// events after it arrive first, then live ones.
func ExampleAfter() {
	url, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, entity := range []string{"MOTION_STARTED", "MOTION_STOPPED", "MOTION_STARTED"} {
		publish(url, `{"entity":"`+entity+`","deviceUuid":"camera-1"}`)
	}

	stored := uint64(1) // the cursor a previous run stored
	s, err := client.Dial(ctx, url, client.WithDialect(client.ESS), client.WithAPIKey("acme-key-1"), client.After(stored))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	for range 2 {
		e, err := s.Next(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.ID, e.Entity)
		s.Ack(e.ID)
	}
	// Output:
	// 2 MOTION_STOPPED
	// 3 MOTION_STARTED
}

// exampleServer starts a herald server with an org and its API key, on
// an empty data dir; stop stops it and removes the data.
func exampleServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "herald-example")
	if err != nil {
		panic(err)
	}
	cfg := testConfig(dir)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		panic(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK { // serving, not only listening
				break
			}
		}
	}
	return "ws://" + srv.Addr(), func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}
}

func publish(url, event string) {
	req, _ := http.NewRequest("POST", strings.Replace(url, "ws://", "http://", 1)+"/api/events", strings.NewReader(event))
	req.Header.Set("x-auth-apikey", "acme-key-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
}
