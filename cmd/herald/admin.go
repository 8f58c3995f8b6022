package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// adminClient calls the admin API (/api/admin/) for the
// `herald orgs|keys|users|devices` commands.
type adminClient struct {
	url, key string
	json     bool // print the API's JSON instead of a table
	out      io.Writer
}

// apiError is herald's JSON error, as the CLI shows it.
type apiError struct {
	Status int
	Code   string `json:"code"`
	Msg    string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Msg)
}

// addAdminFlags adds the flags every admin command shares.
func addAdminFlags(cmd *cobra.Command, c *adminClient) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.url, "url", "http://127.0.0.1:8080", "herald server")
	f.StringVar(&c.key, "key", "", "API key with the admin scope (default $HERALD_API_KEY)")
	f.BoolVar(&c.json, "json", false, "print the API's JSON answer instead of a table")
	cmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if c.key == "" {
			c.key = os.Getenv("HERALD_API_KEY")
		}
		if c.key == "" {
			return errors.New("no API key: give --key or set HERALD_API_KEY (a key with the admin scope)")
		}
		c.out = cmd.OutOrStdout()
		return nil
	}
}

// call sends one request and decodes the JSON answer into out (if not
// nil); an error answer is an *apiError. With --json the answer is
// printed as it came.
func (c *adminClient) call(method, path string, body, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(c.url, "/")+path, reader)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("x-auth-apikey", c.key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error apiError `json:"error"`
		}
		if json.Unmarshal(answer, &e) != nil || e.Error.Code == "" {
			return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(answer)))
		}
		e.Error.Status = resp.StatusCode
		return &e.Error
	}
	if out != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("%s %s answered %.200s", method, path, answer)
		}
	}
	if c.json && len(answer) > 0 {
		c.out.Write(answer)
	}
	return nil
}

// table prints rows under header, unless --json printed the answer.
func (c *adminClient) table(header string, rows [][]string) {
	if c.json {
		return
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, row := range rows {
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	w.Flush()
}

// done prints what a command did, unless --json printed the answer.
func (c *adminClient) done(format string, args ...any) {
	if !c.json {
		fmt.Fprintf(c.out, format+"\n", args...)
	}
}

type cliOrg struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

// orgUUID resolves an org given by uuid or by name (unique).
func (c *adminClient) orgUUID(org string) (string, error) {
	if org == "" {
		return "", errors.New("no org: give --org (its uuid or name) or set HERALD_ORG")
	}
	quiet := *c
	quiet.json = false
	var found cliOrg
	err := quiet.call("GET", "/api/admin/orgs/"+url.PathEscape(org), nil, &found)
	var e *apiError
	if !errors.As(err, &e) || e.Status != http.StatusNotFound {
		return found.UUID, err
	}
	var list struct {
		Orgs []cliOrg `json:"orgs"`
	}
	if err := quiet.call("GET", "/api/admin/orgs", nil, &list); err != nil {
		return "", err
	}
	var uuids []string
	for _, o := range list.Orgs {
		if o.Name == org {
			uuids = append(uuids, o.UUID)
		}
	}
	switch len(uuids) {
	case 0:
		return "", fmt.Errorf("no org has the uuid or name %q", org)
	case 1:
		return uuids[0], nil
	}
	return "", fmt.Errorf("%d orgs are named %q: give the uuid (%s)", len(uuids), org, strings.Join(uuids, ", "))
}

func newOrgsCommand() *cobra.Command {
	c := &adminClient{}
	cmd := &cobra.Command{
		Use:   "orgs",
		Short: "List, create, show, rename and delete orgs (admin API)",
		Long: `Manage orgs through the admin API (/api/admin/orgs) of a running server.
The key (--key or $HERALD_API_KEY) needs the admin scope. An org is named
by its uuid or by its name.

Deleting an org deletes its API keys, users and devices and closes every
connection of the org on every node; its events stay until retention.`,
	}
	addAdminFlags(cmd, c)
	printOrgs := func(orgs ...cliOrg) {
		var rows [][]string
		for _, o := range orgs {
			rows = append(rows, []string{o.UUID, o.Name})
		}
		c.table("UUID\tNAME", rows)
	}
	var uuid, name string
	create := &cobra.Command{Use: "create NAME", Short: "Create an org", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var org cliOrg
			if err := c.call("POST", "/api/admin/orgs", map[string]string{"uuid": uuid, "name": args[0]}, &org); err != nil {
				return err
			}
			printOrgs(org)
			return nil
		}}
	create.Flags().StringVar(&uuid, "uuid", "", "the org's uuid (default: a new random one)")
	update := &cobra.Command{Use: "update ORG --name NAME", Short: "Rename an org", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := c.orgUUID(args[0])
			if err != nil {
				return err
			}
			body := map[string]any{}
			if cmd.Flags().Changed("name") {
				body["name"] = name
			}
			var org cliOrg
			if err := c.call("PATCH", "/api/admin/orgs/"+url.PathEscape(id), body, &org); err != nil {
				return err
			}
			printOrgs(org)
			return nil
		}}
	update.Flags().StringVar(&name, "name", "", "the new name")
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "List every org", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				var list struct {
					Orgs []cliOrg `json:"orgs"`
				}
				if err := c.call("GET", "/api/admin/orgs", nil, &list); err != nil {
					return err
				}
				printOrgs(list.Orgs...)
				return nil
			}},
		create,
		&cobra.Command{Use: "show ORG", Short: "Show an org", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := c.orgUUID(args[0])
				if err != nil {
					return err
				}
				var org cliOrg
				if err := c.call("GET", "/api/admin/orgs/"+url.PathEscape(id), nil, &org); err != nil {
					return err
				}
				printOrgs(org)
				return nil
			}},
		update,
		&cobra.Command{Use: "delete ORG", Short: "Delete an org with its keys, users and devices", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := c.orgUUID(args[0])
				if err != nil {
					return err
				}
				if err := c.call("DELETE", "/api/admin/orgs/"+url.PathEscape(id), nil, nil); err != nil {
					return err
				}
				c.done("deleted org %s", id)
				return nil
			}},
	)
	return cmd
}

// orgScoped is a command group of one org's things: keys, users, devices.
type orgScoped struct {
	adminClient
	org string
}

func (c *orgScoped) path(parts ...string) (string, error) {
	id, err := c.orgUUID(c.org)
	if err != nil {
		return "", err
	}
	p := "/api/admin/orgs/" + url.PathEscape(id)
	for _, part := range parts {
		p += "/" + url.PathEscape(part)
	}
	return p, nil
}

func newOrgScopedCommand(use, short, long string) (*cobra.Command, *orgScoped) {
	c := &orgScoped{}
	cmd := &cobra.Command{Use: use, Short: short, Long: long}
	addAdminFlags(cmd, &c.adminClient)
	cmd.PersistentFlags().StringVar(&c.org, "org", os.Getenv("HERALD_ORG"), "the org, by uuid or name (default $HERALD_ORG)")
	return cmd, c
}

type cliKey struct {
	ID     string   `json:"id"`
	Org    string   `json:"org"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	Key    string   `json:"key"`
}

func newKeysCommand() *cobra.Command {
	cmd, c := newOrgScopedCommand("keys", "List, create, show, update and revoke API keys (admin API)",
		`Manage an org's API keys through the admin API of a running server. The
key (--key or $HERALD_API_KEY) needs the admin scope.

A new key is printed once, when it is created: only its hash (the key's
id) is stored. Deleting a key, or updating it without the subscribe
scope, closes the connections it opened, on every node, within a second.`)
	printKeys := func(keys ...cliKey) {
		var rows [][]string
		for _, k := range keys {
			rows = append(rows, []string{k.ID, k.Name, strings.Join(k.Scopes, ",")})
		}
		c.table("ID\tNAME\tSCOPES", rows)
	}
	var name string
	var scopes []string
	create := &cobra.Command{Use: "create", Short: "Create an API key and print it (once)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := c.path("keys")
			if err != nil {
				return err
			}
			var key cliKey
			if err := c.call("POST", path, map[string]any{"name": name, "scopes": scopes}, &key); err != nil {
				return err
			}
			printKeys(key)
			c.done("\nkey: %s\nThis is the only time the key is shown: store it now.", key.Key)
			return nil
		}}
	create.Flags().StringVar(&name, "name", "", "a name for the key")
	create.Flags().StringSliceVar(&scopes, "scope", []string{"subscribe"}, "scopes: subscribe, publish, admin (comma list or repeated)")
	update := &cobra.Command{Use: "update ID", Short: "Rename a key or change its scopes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := c.path("keys", args[0])
			if err != nil {
				return err
			}
			body := map[string]any{}
			if cmd.Flags().Changed("name") {
				body["name"] = name
			}
			if cmd.Flags().Changed("scope") {
				body["scopes"] = scopes
			}
			var key cliKey
			if err := c.call("PATCH", path, body, &key); err != nil {
				return err
			}
			printKeys(key)
			return nil
		}}
	update.Flags().StringVar(&name, "name", "", "the new name")
	update.Flags().StringSliceVar(&scopes, "scope", nil, "the new scopes (comma list or repeated)")
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "List the org's keys (never the keys themselves)", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				path, err := c.path("keys")
				if err != nil {
					return err
				}
				var list struct {
					Keys []cliKey `json:"keys"`
				}
				if err := c.call("GET", path, nil, &list); err != nil {
					return err
				}
				printKeys(list.Keys...)
				return nil
			}},
		create,
		&cobra.Command{Use: "show ID", Short: "Show a key", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				path, err := c.path("keys", args[0])
				if err != nil {
					return err
				}
				var key cliKey
				if err := c.call("GET", path, nil, &key); err != nil {
					return err
				}
				printKeys(key)
				return nil
			}},
		update,
		&cobra.Command{Use: "delete ID", Short: "Revoke a key: refused from now on, its connections closed", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				path, err := c.path("keys", args[0])
				if err != nil {
					return err
				}
				if err := c.call("DELETE", path, nil, nil); err != nil {
					return err
				}
				c.done("revoked key %s", args[0])
				return nil
			}},
	)
	return cmd
}

type cliUser struct {
	Org  string `json:"org"`
	Name string `json:"name"`
}

// readPassword reads a password: the first line of stdin.
func readPassword(cmd *cobra.Command) (string, error) {
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on stdin: pipe it in, as in  echo \"$PASSWORD\" | herald users create NAME")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func newUsersCommand() *cobra.Command {
	cmd, c := newOrgScopedCommand("users", "List, create, show, update and delete users (admin API)",
		`Manage an org's users through the admin API of a running server. The key
(--key or $HERALD_API_KEY) needs the admin scope. Users log in at the token
endpoint (POST /API/IDP/connect/token, password grant); a password is read from the
first line of stdin, never from a flag.

Deleting a user refuses their tokens from then on and closes the
connections they opened, on every node, within a second.`)
	printUsers := func(users ...cliUser) {
		var rows [][]string
		for _, u := range users {
			rows = append(rows, []string{u.Name})
		}
		c.table("NAME", rows)
	}
	one := func(method string, password bool) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			var path string
			var err error
			var body any
			if method == "POST" {
				path, err = c.path("users")
			} else {
				path, err = c.path("users", args[0])
			}
			if err != nil {
				return err
			}
			if password {
				pw, err := readPassword(cmd)
				if err != nil {
					return err
				}
				body = map[string]string{"password": pw}
				if method == "POST" {
					body = map[string]string{"name": args[0], "password": pw}
				}
			}
			if method == "DELETE" {
				if err := c.call(method, path, nil, nil); err != nil {
					return err
				}
				c.done("deleted user %s", args[0])
				return nil
			}
			var user cliUser
			if err := c.call(method, path, body, &user); err != nil {
				return err
			}
			printUsers(user)
			return nil
		}
	}
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "List the org's users", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				path, err := c.path("users")
				if err != nil {
					return err
				}
				var list struct {
					Users []cliUser `json:"users"`
				}
				if err := c.call("GET", path, nil, &list); err != nil {
					return err
				}
				printUsers(list.Users...)
				return nil
			}},
		&cobra.Command{Use: "create NAME", Short: "Create a user; the password is read from stdin", Args: cobra.ExactArgs(1), RunE: one("POST", true)},
		&cobra.Command{Use: "show NAME", Short: "Show a user", Args: cobra.ExactArgs(1), RunE: one("GET", false)},
		&cobra.Command{Use: "update NAME", Short: "Set a user's password, read from stdin", Args: cobra.ExactArgs(1), RunE: one("PATCH", true)},
		&cobra.Command{Use: "delete NAME", Short: "Delete a user: tokens refused, connections closed", Args: cobra.ExactArgs(1), RunE: one("DELETE", false)},
	)
	return cmd
}

type cliDevice struct {
	Org    string `json:"org"`
	UUID   string `json:"uuid"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Number int64  `json:"number"`
}

func newDevicesCommand() *cobra.Command {
	cmd, c := newOrgScopedCommand("devices", "List, register, show, update and delete devices (admin API)",
		`Manage an org's registered devices through the admin API of a running
server. The key (--key or $HERALD_API_KEY) needs the admin scope. Devices
need not be registered to send events; registering gives them a name, a
kind and a number (the channels dialect names devices by number).`)
	printDevices := func(devices ...cliDevice) {
		var rows [][]string
		for _, d := range devices {
			number := ""
			if d.Number != 0 {
				number = strconv.FormatInt(d.Number, 10)
			}
			rows = append(rows, []string{d.UUID, d.Name, d.Kind, number})
		}
		c.table("UUID\tNAME\tKIND\tNUMBER", rows)
	}
	var name, kind string
	var number int64
	fields := func(cmd *cobra.Command) map[string]any {
		body := map[string]any{}
		if cmd.Flags().Changed("name") {
			body["name"] = name
		}
		if cmd.Flags().Changed("kind") {
			body["kind"] = kind
		}
		if cmd.Flags().Changed("number") {
			body["number"] = number
		}
		return body
	}
	flags := func(cmd *cobra.Command) *cobra.Command {
		cmd.Flags().StringVar(&name, "name", "", "the device's name")
		cmd.Flags().StringVar(&kind, "kind", "", "camera, sensor, door, microphone, input, output, …")
		cmd.Flags().Int64Var(&number, "number", 0, "a numeric id (0 for none)")
		return cmd
	}
	show := func(method string) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			var path string
			var err error
			var body map[string]any
			switch method {
			case "POST":
				path, err = c.path("devices")
				body = fields(cmd)
				body["uuid"] = args[0]
			case "PATCH":
				path, err = c.path("devices", args[0])
				body = fields(cmd)
			default:
				path, err = c.path("devices", args[0])
			}
			if err != nil {
				return err
			}
			if method == "DELETE" {
				if err := c.call(method, path, nil, nil); err != nil {
					return err
				}
				c.done("deleted device %s", args[0])
				return nil
			}
			var d cliDevice
			if body == nil {
				err = c.call(method, path, nil, &d)
			} else {
				err = c.call(method, path, body, &d)
			}
			if err != nil {
				return err
			}
			printDevices(d)
			return nil
		}
	}
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "List the org's registered devices", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				path, err := c.path("devices")
				if err != nil {
					return err
				}
				var list struct {
					Devices []cliDevice `json:"devices"`
				}
				if err := c.call("GET", path, nil, &list); err != nil {
					return err
				}
				printDevices(list.Devices...)
				return nil
			}},
		flags(&cobra.Command{Use: "create UUID", Short: "Register a device", Args: cobra.ExactArgs(1), RunE: show("POST")}),
		&cobra.Command{Use: "show UUID", Short: "Show a device", Args: cobra.ExactArgs(1), RunE: show("GET")},
		flags(&cobra.Command{Use: "update UUID", Short: "Change a device's name, kind or number", Args: cobra.ExactArgs(1), RunE: show("PATCH")}),
		&cobra.Command{Use: "delete UUID", Short: "Delete a device", Args: cobra.ExactArgs(1), RunE: show("DELETE")},
	)
	return cmd
}
