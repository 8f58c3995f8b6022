package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/herald-gw/herald/client"
	"github.com/herald-gw/herald/internal/server"
)

const adminKey = "client-test-admin-key"

// A Stream whose API key is revoked hears of it through client.OnStatus, then
// ends with a permanent error: in every dialect.
func TestRevokedKeyEndsTheStream(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Orgs[0].APIKeys = append(cfg.Orgs[0].APIKeys, server.APIKeyConfig{Key: adminKey, Scopes: []string{"admin"}})
	n := startNode(t, cfg)
	for _, d := range []client.Dialect{client.STOMP, client.Channels, client.ESS, client.Streams} {
		t.Run(string(d), func(t *testing.T) {
			id, secret := createKey(t, n.base())
			opts := map[client.Dialect][]client.Option{
				client.STOMP:    {client.WithAPIKey(secret)},
				client.Channels: {client.WithPassword("any", secret)},
				client.ESS:      {client.WithAPIKey(secret)},
				client.Streams:  {client.WithAPIKey(secret), client.WithCompany("acme")},
			}[d]
			statuses := make(chan client.Status, 16)
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			s, err := client.Dial(ctx, "ws://"+n.addr, append(opts, client.WithDialect(d), client.OnStatus(func(st client.Status) { statuses <- st }))...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for st := range statuses {
				if st.Connected {
					break
				}
			}
			req, _ := http.NewRequest("DELETE", n.base()+"/api/admin/orgs/"+org+"/keys/"+id, nil)
			req.Header.Set("x-auth-apikey", adminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE key: %v %v", resp, err)
			}
			resp.Body.Close()
			select {
			case st := <-statuses:
				if st.Connected || st.Err == nil {
					t.Fatalf("status %+v, want the disconnect", st)
				}
			case <-ctx.Done():
				t.Fatal("client.OnStatus was not told of the disconnect")
			}
			_, err = s.Next(ctx)
			var e *client.Error
			if !errors.As(err, &e) || !e.Permanent {
				t.Fatalf("Next: %v, want a permanent *client.Error", err)
			}
		})
	}
}

// createKey makes a subscribe key through the admin API.
func createKey(t *testing.T, base string) (id, secret string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"scopes": []string{"subscribe"}})
	req, _ := http.NewRequest("POST", base+"/api/admin/orgs/"+org+"/keys", bytes.NewReader(body))
	req.Header.Set("x-auth-apikey", adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID, Key string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create key: %d %v", resp.StatusCode, err)
	}
	return out.ID, out.Key
}
