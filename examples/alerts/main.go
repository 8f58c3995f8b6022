// Command alerts prints one org's person and loitering alerts with the
// camera's name, and keeps its cursor in a file, so that a restart goes on
// where it stopped. It is the program of docs/sdk.md:
//
//	HERALD_URL=ws://127.0.0.1:8080 HERALD_API_KEY=… go run ./examples/alerts
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/herald-gw/herald/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	opts := []client.Option{
		client.WithAPIKey(os.Getenv("HERALD_API_KEY")),
		client.WithFilter(client.Filter{Entities: []string{"POLICY_ALERT"}, Triggers: []string{"MOTION_HUMAN", "LOITERING"}}),
		client.OnStatus(func(st client.Status) {
			if !st.Connected {
				log.Printf("disconnected (attempt %d, after %d): %v", st.Attempt, st.After, st.Err)
			}
		}),
	}
	if data, err := os.ReadFile("alerts.cursor"); err == nil {
		id, _ := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		opts = append(opts, client.After(id))
	}
	url := os.Getenv("HERALD_URL")
	if url == "" {
		url = "ws://127.0.0.1:8080"
	}
	s, err := client.Dial(ctx, url, opts...)
	if err != nil {
		log.Fatal(err) // a refused key, a bad URL: retrying cannot help
	}
	defer s.Close()
	for {
		e, err := s.Next(ctx)
		if errors.Is(err, context.Canceled) {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		name := e.DeviceUUID
		if d, err := s.Device(ctx, e.DeviceUUID); err == nil {
			name = d.Name
		}
		fmt.Printf("%d %s %v at %s: %s\n", e.ID, e.Type, e.Triggers, name, e.Description)
		s.Ack(e.ID)
		if err := os.WriteFile("alerts.cursor", []byte(strconv.FormatUint(s.Acked(), 10)), 0o600); err != nil {
			log.Fatal(err)
		}
	}
}
