package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// publishCommand is `herald publish`.
type publishCommand struct {
	url, key                                 string
	entity, typ, device, entityUUID, channel string
	severity, description, title, message    string
	status                                   string
	triggers, fields                         []string
	batch                                    int
}

func newPublishCommand() *cobra.Command {
	c := &publishCommand{}
	cmd := &cobra.Command{
		Use:   "publish [-]",
		Short: "Publish events to a herald server: one from flags, or NDJSON from stdin (-)",
		Long: `Publish events through POST /api/events and print their ids, one per line.

With flags, one event: herald publish --entity POLICY_ALERT --type CREATE \
  --device camera-1 --trigger MOTION_HUMAN --description "Person detected"
With "-", NDJSON from stdin (one event object per line), sent in batches of
--batch; each id is printed once its event is durably stored.

The key is --key, else $HERALD_API_KEY; it needs the publish scope.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "-" {
				return fmt.Errorf("unexpected argument %q: use - to read NDJSON from stdin", args[0])
			}
			return c.run(cmd, len(args) == 1)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.url, "url", "http://127.0.0.1:8080", "herald server")
	f.StringVar(&c.key, "key", "", "API key with the publish scope (default $HERALD_API_KEY)")
	f.StringVar(&c.entity, "entity", "POLICY_ALERT", "entity")
	f.StringVar(&c.typ, "type", "CREATE", "change type")
	f.StringVar(&c.device, "device", "", "device uuid")
	f.StringVar(&c.entityUUID, "entity-uuid", "", "entity uuid (default: a new one)")
	f.StringVar(&c.channel, "channel", "", "channel (default: from the entity)")
	f.StringSliceVar(&c.triggers, "trigger", nil, "policyAlertTriggers (comma list or repeated)")
	f.StringVar(&c.severity, "severity", "", "severity")
	f.StringVar(&c.description, "description", "", "textDescription")
	f.StringVar(&c.title, "title", "", "title")
	f.StringVar(&c.message, "message", "", "message")
	f.StringVar(&c.status, "status", "", "device status (for DEVICE_STATUS)")
	f.StringArrayVar(&c.fields, "field", nil, "another field, name=value; a value that is JSON is taken as JSON (repeatable)")
	f.IntVar(&c.batch, "batch", 500, "events per request when reading stdin (at most 1000)")
	return cmd
}

func (c *publishCommand) run(cmd *cobra.Command, stdin bool) error {
	if c.key == "" {
		c.key = os.Getenv("HERALD_API_KEY")
	}
	if c.key == "" {
		return errors.New("no API key: give --key or set HERALD_API_KEY")
	}
	out := cmd.OutOrStdout()
	if !stdin {
		event, err := c.event()
		if err != nil {
			return err
		}
		body, _ := json.Marshal(event)
		return c.post(out, body, "application/json")
	}
	c.batch = min(max(c.batch, 1), 1000)
	scanner := bufio.NewScanner(cmd.InOrStdin())
	scanner.Buffer(make([]byte, 64<<10), 4<<20)
	var pending bytes.Buffer
	n, line := 0, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := c.post(out, pending.Bytes(), "application/x-ndjson")
		pending.Reset()
		n = 0
		return err
	}
	for scanner.Scan() {
		line++
		text := bytes.TrimSpace(scanner.Bytes())
		if len(text) == 0 {
			continue
		}
		if !json.Valid(text) {
			return fmt.Errorf("stdin line %d is not JSON", line)
		}
		pending.Write(text)
		pending.WriteByte('\n')
		if n++; n == c.batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	return flush()
}

// event builds the flags' event.
func (c *publishCommand) event() (map[string]any, error) {
	e := map[string]any{"entity": c.entity, "type": c.typ}
	for name, v := range map[string]string{"deviceUuid": c.device, "entityUuid": c.entityUUID, "channel": c.channel,
		"severity": c.severity, "textDescription": c.description, "title": c.title, "message": c.message, "status": c.status} {
		if v != "" {
			e[name] = v
		}
	}
	if c.entityUUID == "" {
		e["entityUuid"] = fmt.Sprintf("%s-%d", strings.ToLower(c.entity), time.Now().UnixNano())
	}
	if len(c.triggers) > 0 {
		e["policyAlertTriggers"] = c.triggers
	}
	for _, f := range c.fields {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--field %q: want name=value", f)
		}
		var v any
		if json.Unmarshal([]byte(value), &v) != nil {
			v = value
		}
		e[name] = v
	}
	return e, nil
}

// post sends one request and prints the ids it answers.
func (c *publishCommand) post(out io.Writer, body []byte, contentType string) error {
	req, err := http.NewRequest("POST", strings.TrimSuffix(c.url, "/")+"/api/events", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("x-auth-apikey", c.key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /api/events: %d %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	var ids struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(answer, &ids); err != nil {
		return fmt.Errorf("POST /api/events answered %s", answer)
	}
	for _, id := range ids.IDs {
		fmt.Fprintln(out, id)
	}
	return nil
}
