package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-gw/herald/client"
	"github.com/herald-gw/herald/internal/filter"
	"github.com/herald-gw/herald/monitor"
)

// monitorCommand is `herald monitor`.
type monitorCommand struct {
	url, dialect                   string
	apiKey, token, user, password  string
	company                        string
	entities, types, devices       []string
	triggers, severities, channels []string
	allEvents                      bool
	after                          string
	cfg                            monitor.Config
	noNames                        bool
}

func newMonitorCommand() *cobra.Command {
	c := &monitorCommand{}
	cmd := &cobra.Command{
		Use:   "monitor --url URL [--dialect D] (--api-key KEY | --token JWT | --user U --password P)",
		Short: "Stream events from a herald server: print them, relay them to a webhook, Slack, SQLite or PostgreSQL",
		Long: `Connect to a herald server in any dialect, filter its events, print them for
people (--format text) or pipes (--format json, one object per line), and relay
them to any combination of sinks. The cursor is stored only once every sink has
taken an event (in the SQL database, in the same transaction as the rows; else
in --state), so after a crash or kill -9 the monitor resumes without losing any.

Without --all-events or a filter on entity or channel, only alerts are shown,
as the Rhombus sample does. Filters are comma lists or repeated flags.

Credentials: --api-key (stomp; every dialect takes one), --token (a JWT for
channels and ess; streams with --user), --user/--password (the token endpoint's
password grant; streams with --company). HERALD_API_KEY and HERALD_PASSWORD are
read when the flags are not given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.url, "url", "ws://127.0.0.1:8080", "herald server (ws://, wss://, http://, https://; a dialect's path picks the dialect)")
	f.StringVar(&c.dialect, "dialect", "", "stomp, channels, ess or streams (default: from the URL's path, else stomp)")
	f.StringVar(&c.apiKey, "api-key", "", "API key (default $HERALD_API_KEY)")
	f.StringVar(&c.token, "token", "", "JWT")
	f.StringVar(&c.user, "user", "", "user name")
	f.StringVar(&c.password, "password", "", "user's password (default $HERALD_PASSWORD)")
	f.StringVar(&c.company, "company", "", "streams: the org's name or uuid (X-Auth-Company)")
	f.StringSliceVar(&c.entities, "entity", nil, "only these entities (POLICY_ALERT, DEVICE_STATUS, …)")
	f.StringSliceVar(&c.types, "type", nil, "only these change types (CREATE, UPDATE, DELETE)")
	f.StringSliceVar(&c.devices, "device", nil, "only these device uuids")
	f.StringSliceVar(&c.triggers, "trigger", nil, "only alerts with one of these triggers")
	f.StringSliceVar(&c.severities, "severity", nil, "only these severities")
	f.StringSliceVar(&c.channels, "channel", nil, "only these channels (alerts, telemetry, devices, system, events)")
	f.BoolVar(&c.allEvents, "all-events", false, "every event, not only alerts")
	f.StringVar(&c.after, "after", "", "start after this event id (0: the whole log), whatever the stores hold")
	f.StringVar(&c.cfg.Format, "format", "text", "output: text, json or none")
	f.BoolVar(&c.noNames, "no-names", false, "do not look device names up")
	f.DurationVar(&c.cfg.NamesTTL, "names-ttl", 5*time.Minute, "how long a device name is cached")
	f.StringVar(&c.cfg.Webhook, "webhook", "", "POST each event (JSON) to this URL")
	f.StringVar(&c.cfg.Slack, "slack", "", "post alerts to this Slack incoming-webhook URL")
	f.IntVar(&c.cfg.Retries, "retries", 5, "attempts per webhook or Slack post before the event goes to the dead-letter file")
	f.DurationVar(&c.cfg.Backoff, "retry-backoff", 500*time.Millisecond, "delay after the first failed attempt, doubled after each")
	f.StringVar(&c.cfg.DeadLetter, "dead-letter", "herald-monitor-dead-letter.jsonl", "file for events the webhook or Slack never took")
	f.DurationVar(&c.cfg.SlackEvery, "slack-interval", time.Second, "at most one Slack message per this (Slack's limit is one per second)")
	f.StringVar(&c.cfg.SQLite, "sqlite", "", "store events in this SQLite database file")
	f.StringVar(&c.cfg.Postgres, "postgres", "", "store events in this PostgreSQL database (a DSN: postgres://user@host/db)")
	f.StringVar(&c.cfg.State, "state", "", "file for the cursor (default herald-monitor.state when a webhook or Slack sink has no SQL database beside it)")
	f.StringVar(&c.cfg.Name, "name", "default", "the cursor's name in the stores, for several monitors on one database")
	return cmd
}

func (c *monitorCommand) run(cmd *cobra.Command) error {
	if c.apiKey == "" && c.token == "" && c.user == "" {
		c.apiKey = os.Getenv("HERALD_API_KEY")
	}
	if c.password == "" && c.user != "" {
		c.password = os.Getenv("HERALD_PASSWORD")
	}
	opts := []client.Option{}
	if c.dialect != "" {
		d, err := client.ParseDialect(c.dialect)
		if err != nil {
			return err
		}
		opts = append(opts, client.WithDialect(d))
	}
	switch {
	case c.apiKey != "":
		opts = append(opts, client.WithAPIKey(c.apiKey))
	case c.token != "":
		opts = append(opts, client.WithToken(c.token))
	case c.password != "":
		opts = append(opts, client.WithPassword(c.user, c.password))
	default:
		return errors.New("no credential: give --api-key (or HERALD_API_KEY), --token, or --user and --password")
	}
	if c.user != "" && c.token != "" {
		opts = append(opts, client.WithUser(c.user)) // whose token it is, for streams
	}
	if c.company != "" {
		opts = append(opts, client.WithCompany(c.company))
	}
	flt := client.Filter{Entities: lists(c.entities), Types: lists(c.types), Devices: lists(c.devices),
		Triggers: lists(c.triggers), Severities: lists(c.severities), Channels: lists(c.channels)}
	if !c.allEvents && len(flt.Entities) == 0 && len(flt.Channels) == 0 {
		flt.Channels = []string{"alerts"}
	}
	opts = append(opts, client.WithFilter(flt))
	if c.after != "" {
		id, err := strconv.ParseUint(c.after, 10, 64)
		if err != nil {
			return fmt.Errorf("--after %q is not an event id", c.after)
		}
		c.cfg.After = &id
	}
	c.cfg.URL, c.cfg.Options = c.url, opts
	c.cfg.Out, c.cfg.Log = cmd.OutOrStdout(), cmd.ErrOrStderr()
	c.cfg.Live = isTerminal(os.Stderr)
	c.cfg.Names = !c.noNames
	return monitor.Run(cmd.Context(), c.cfg)
}

// lists flattens repeated flags of comma lists.
func lists(values []string) []string {
	var out []string
	for _, v := range values {
		out = append(out, filter.ParseList(v)...)
	}
	return out
}

func isTerminal(f *os.File) bool {
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
